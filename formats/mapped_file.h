// A whole file memory-mapped copy-on-write: reading a tensor touches only its
// pages, and in-place edits of a zero-copy tensor never reach the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace openba {

class MappedFile {
 public:
  // Throws Error naming the path if it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  // Private (copy-on-write) pages: safe to hand out to code that may write.
  uint8_t* mutable_data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops these pages from this process (streaming readers, after a tensor is
  // consumed). Only for ranges no live zero-copy tensor still uses: private
  // edits in them are discarded.
  void release_pages(uint64_t offset, uint64_t length) const;

 private:
  MappedFile(std::string path, uint8_t* data, uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace openba
