// The safetensors header parser: good files and every malformed case the
// reader must refuse with an error naming the file and tensor.
#include <catch2/catch.hpp>

#include "formats/safetensors.h"
#include "tests/test_util.h"
#include "util/error.h"

using Catch::Matchers::Contains;
using openba::test::safetensors_bytes;

namespace {

openba::SafetensorsFile parse(const std::string& bytes) {
  return openba::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                   "m.safetensors");
}

std::string floats(int n) { return std::string(static_cast<size_t>(n) * 4, '\x01'); }

}  // namespace

TEST_CASE("safetensors: a valid header is parsed with absolute offsets", "[safetensors]") {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const auto file = parse(safetensors_bytes(header, floats(3)));
  REQUIRE(file.tensors.size() == 2);
  CHECK(file.tensors[0].name == "a");  // sorted by offset
  CHECK(file.tensors[0].offset == 8 + header.size());
  CHECK(file.tensors[1].name == "b");
  CHECK(file.tensors[1].dtype == openba::DType::F16);
  CHECK(file.tensors[1].offset == 8 + header.size() + 8);
  CHECK(file.metadata.at("format") == "pt");
}

TEST_CASE("safetensors: build_safetensors_header round-trips and aligns the data", "[safetensors]") {
  std::vector<uint64_t> offsets;
  const std::string header = openba::build_safetensors_header(
      {{"x", openba::DType::BF16, {3, 1}}, {"y", openba::DType::F32, {2}}}, {{"k", "v"}}, &offsets);
  CHECK(header.size() % 8 == 0);
  REQUIRE(offsets == std::vector<uint64_t>{0, 6});
  const auto file = parse(header + std::string(14, '\0'));
  REQUIRE(file.tensors.size() == 2);
  CHECK(file.tensors[1].offset == header.size() + 6);
  CHECK(file.metadata.at("k") == "v");
}

TEST_CASE("safetensors: malformed files are refused with file and tensor named", "[safetensors][bad-input]") {
  SECTION("shorter than the length prefix") {
    CHECK_THROWS_WITH(parse("abc"), Contains("m.safetensors") && Contains("truncated"));
  }
  SECTION("header length beyond the file") {
    std::string bytes = safetensors_bytes("{}", "");
    bytes[0] = '\x40';
    CHECK_THROWS_WITH(parse(bytes), Contains("beyond the end of the file"));
  }
  SECTION("malformed JSON") {
    CHECK_THROWS_WITH(parse(safetensors_bytes("{\"a\": [", "")), Contains("malformed safetensors header JSON"));
  }
  SECTION("duplicate names") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(2))), Contains("'w'") && Contains("duplicate"));
  }
  SECTION("unknown dtype") {
    const std::string h = R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, "x")), Contains("'w'") && Contains("unknown dtype 'F8_E4M3'"));
  }
  SECTION("offsets out of range (truncated data)") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(3))), Contains("'w'") && Contains("out of range"));
  }
  SECTION("offsets reversed") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(1))), Contains("reversed"));
  }
  SECTION("span does not match shape x dtype") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(4))),
                      Contains("'w'") && Contains("span 12 bytes") && Contains("needs 16"));
  }
  SECTION("overlapping tensors") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(3))), Contains("'b'") && Contains("overlaps tensor 'a'"));
  }
  SECTION("negative or non-integer dimension") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(1))), Contains("'w'") && Contains("shape"));
  }
  SECTION("shape whose element count overflows") {
    const std::string h =
        R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(1))), Contains("overflows"));
  }
  SECTION("entry missing a field") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[1]}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, floats(1))), Contains("data_offsets"));
  }
  SECTION("metadata that is not a string map") {
    const std::string h = R"({"__metadata__":{"k":1}})";
    CHECK_THROWS_WITH(parse(safetensors_bytes(h, "")), Contains("__metadata__"));
  }
  SECTION("header that is not an object") {
    CHECK_THROWS_WITH(parse(safetensors_bytes("[1,2]", "")), Contains("not a JSON object"));
  }
}
