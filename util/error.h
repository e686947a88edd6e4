// openba::Error is the one exception type the libraries throw for bad input or
// failed I/O. Its message always names the thing at fault (file, line, tensor,
// flag) so a tool can print it as is and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace openba {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace openba
