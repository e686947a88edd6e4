// The restricted state-dict unpickler on hand-assembled pickles: what a
// state dict needs is understood; anything else is refused, never run.
#include <catch2/catch.hpp>

#include "formats/torch_pickle.h"
#include "formats/zip_archive.h"
#include "util/error.h"

using Catch::Matchers::Contains;

namespace {

std::string unicode(const std::string& s) {  // BINUNICODE
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + s;
}
std::string global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}
std::string int1(int v) { return std::string("K") + static_cast<char>(v); }

// ('storage', torch.FloatStorage, key, 'cpu', numel) BINPERSID
std::string storage(const std::string& key, int numel) {
  return "(" + unicode("storage") + global("torch", "FloatStorage") + unicode(key) + unicode("cpu") +
         int1(numel) + "tQ";
}
// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
std::string tensor(const std::string& key, int numel, int offset, int rows, int cols) {
  return global("torch._utils", "_rebuild_tensor_v2") + "(" + storage(key, numel) + int1(offset) +
         int1(rows) + int1(cols) + "\x86" + int1(cols) + int1(1) + "\x86" + "\x89" +
         global("collections", "OrderedDict") + ")R" + "tR";
}

std::vector<openba::PickledTensor> parse(const std::string& bytes) {
  return openba::parse_state_dict_pickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                         "x.bin");
}

}  // namespace

TEST_CASE("pickle: an OrderedDict of tensors with a shared storage", "[pickle]") {
  const std::string p = std::string("\x80\x02") + global("collections", "OrderedDict") + ")R" +
                        unicode("a") + tensor("0", 8, 0, 2, 2) + "q\x05" + "s" + unicode("b") +
                        "h\x05" + "s" + unicode("c") + tensor("0", 8, 4, 1, 4) + "s.";
  const auto tensors = parse(p);
  REQUIRE(tensors.size() == 3);
  CHECK(tensors[0].name == "a");
  CHECK(tensors[0].shape == std::vector<int64_t>{2, 2});
  CHECK(tensors[0].strides == std::vector<int64_t>{2, 1});
  CHECK(tensors[0].storage_numel == 8);
  CHECK(tensors[1].name == "b");  // memo reference: same tensor under a second name
  CHECK(tensors[1].storage_key == "0");
  CHECK(tensors[2].storage_offset == 4);
  CHECK(tensors[2].dtype == openba::DType::F32);
}

TEST_CASE("pickle: forbidden and malformed pickles are refused", "[pickle][bad-input]") {
  SECTION("a global that would run code") {
    const std::string p = std::string("\x80\x02") + global("posix", "system") + unicode("touch pwned") +
                          "\x85R.";
    CHECK_THROWS_WITH(parse(p), Contains("x.bin") && Contains("refusing global 'posix.system'"));
  }
  SECTION("builtins eval via STACK_GLOBAL") {
    const std::string p = std::string("\x80\x04") + unicode("builtins") + unicode("eval") + "\x93.";
    CHECK_THROWS_WITH(parse(p), Contains("refusing global 'builtins.eval'"));
  }
  SECTION("truncated pickle") {
    const std::string p = std::string("\x80\x02") + global("collections", "OrderedDict") + ")R" + unicode("a");
    CHECK_THROWS_WITH(parse(p.substr(0, p.size() - 1)), Contains("x.bin") && Contains("past the end"));
  }
  SECTION("no STOP") {
    CHECK_THROWS_WITH(parse(std::string("\x80\x02}")), Contains("without STOP"));
  }
  SECTION("stack underflow") {
    CHECK_THROWS_WITH(parse(std::string("\x80\x02s.")), Contains("stack underflow"));
  }
  SECTION("unknown opcode") {
    CHECK_THROWS_WITH(parse(std::string("\x80\x02\xff.")), Contains("unsupported pickle opcode 0xff"));
  }
  SECTION("a top-level object that is not a dict") {
    CHECK_THROWS_WITH(parse(std::string("\x80\x02]")+"."), Contains("not a state dict"));
  }
  SECTION("a value that is not a tensor") {
    CHECK_THROWS_WITH(parse(std::string("\x80\x02}") + unicode("a") + int1(3) + "s."),
                      Contains("'a'") && Contains("not a tensor"));
  }
  SECTION("memo lookup of an unset slot") {
    CHECK_THROWS_WITH(parse(std::string("\x80\x02h\x09.")), Contains("unset slot"));
  }
}

TEST_CASE("zip: garbage and truncated archives are refused", "[zip][bad-input]") {
  const std::string junk(100, 'z');
  CHECK_THROWS_WITH(openba::read_zip_directory(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), "j.bin"),
                    Contains("j.bin") && Contains("end-of-central-directory"));
  const std::string tiny = "PK";
  CHECK_THROWS_WITH(openba::read_zip_directory(reinterpret_cast<const uint8_t*>(tiny.data()), tiny.size(), "t.bin"),
                    Contains("too short"));
}
