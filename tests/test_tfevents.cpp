// TensorBoard event files: CRC-32C vectors, write/read round trip, and that
// corruption or truncation is reported with the file's path. Torch-free.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/tfevents.h"

namespace fs = std::filesystem;
using openba::ScalarEvent;

namespace {

// A fresh directory under the system temp dir, removed on destruction.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("openba-tfevents-" + std::to_string(::getpid()));
  ScratchDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

struct Written {
  std::string path;
  std::vector<ScalarEvent> expected;
};

// Two tags, interleaved, with values that are not exact floats and a negative step.
Written write_sample(const fs::path& dir) {
  Written w;
  openba::TensorBoardWriter writer((dir / "run").string());
  w.path = writer.path();
  for (int64_t step = -1; step < 6; ++step) {
    const double wall = 1.7e9 + 0.25 * static_cast<double>(step);
    w.expected.push_back({"train/loss", 3.0 / (static_cast<double>(step) + 2.5), step, wall});
    w.expected.push_back({"train/lr", 1e-4 * static_cast<double>(step * step), step * 1000, wall + 0.1});
  }
  for (const ScalarEvent& e : w.expected) writer.add_scalar(e.tag, e.value, e.step, e.wall_time);
  writer.flush();
  return w;
}

void check_equal(const std::vector<ScalarEvent>& got, const std::vector<ScalarEvent>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].tag == expected[i].tag);
    CHECK(got[i].value == static_cast<double>(static_cast<float>(expected[i].value)));
    CHECK(got[i].step == expected[i].step);
    CHECK(got[i].wall_time == expected[i].wall_time);
  }
}

std::string error_of(const std::string& path) {
  try {
    openba::read_tensorboard_scalars(path);
  } catch (const openba::Error& e) {
    return e.what();
  }
  return "";
}

// Minimal protobuf and TFRecord encoders for hand-built records.
std::string varint(uint64_t v) {
  std::string s;
  for (; v >= 0x80; v >>= 7) s.push_back(static_cast<char>((v & 0x7f) | 0x80));
  s.push_back(static_cast<char>(v));
  return s;
}
std::string le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}
std::string delimited(uint32_t field, const std::string& body) {
  return varint(field << 3 | 2) + varint(body.size()) + body;
}
std::string record(const std::string& data) {
  const std::string length = le(data.size(), 8);
  return length + le(openba::masked_crc32c(length.data(), 8), 4) + data +
         le(openba::masked_crc32c(data.data(), data.size()), 4);
}

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check values", "[tfevents]") {
  CHECK(openba::crc32c("123456789", 9) == 0xE3069283u);
  const std::string zeros(32, '\0');
  CHECK(openba::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(openba::crc32c("", 0) == 0u);
  const uint32_t crc = openba::crc32c("123456789", 9);
  CHECK(openba::masked_crc32c("123456789", 9) == ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST_CASE("scalars written are read back exactly", "[tfevents]") {
  ScratchDir dir;
  const Written w = write_sample(dir.path);
  CHECK(fs::path(w.path).parent_path() == dir.path / "run");
  CHECK(fs::path(w.path).filename().string().rfind("events.out.tfevents.", 0) == 0);
  check_equal(openba::read_tensorboard_scalars(w.path), w.expected);

  // The first record is the file_version Event.
  const std::string bytes = read_all(w.path);
  CHECK(bytes.find("brain.Event:2") < 64);
}

TEST_CASE("a corrupted byte makes the reader throw naming the file", "[tfevents]") {
  ScratchDir dir;
  const Written w = write_sample(dir.path);
  std::string bytes = read_all(w.path);
  bytes[bytes.size() / 2] ^= 0x10;
  write_all(w.path, bytes);
  const std::string message = error_of(w.path);
  CHECK(message.find(w.path) != std::string::npos);
  CHECK(message.find("CRC mismatch") != std::string::npos);
  CHECK(message.find("byte offset") != std::string::npos);
}

TEST_CASE("a truncated file throws; a prefix never yields wrong scalars", "[tfevents]") {
  ScratchDir dir;
  const Written w = write_sample(dir.path);
  const std::string bytes = read_all(w.path);

  write_all(w.path, bytes.substr(0, bytes.size() - 1));
  const std::string message = error_of(w.path);
  CHECK(message.find(w.path) != std::string::npos);
  CHECK(message.find("truncated") != std::string::npos);

  // Cut anywhere: either an error, or (at a record boundary) a prefix of the scalars.
  int boundaries = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_all(w.path, bytes.substr(0, n));
    std::vector<ScalarEvent> got;
    try {
      got = openba::read_tensorboard_scalars(w.path);
    } catch (const openba::Error&) {
      continue;
    }
    ++boundaries;
    REQUIRE(got.size() <= w.expected.size());
    check_equal(got, std::vector<ScalarEvent>(w.expected.begin(), w.expected.begin() + got.size()));
  }
  // Empty, after the version record, after each scalar record but the last.
  CHECK(boundaries == static_cast<int>(w.expected.size()) + 1);
}

TEST_CASE("unknown fields of every wire type and non-scalar values are skipped", "[tfevents]") {
  ScratchDir dir;
  const std::string path = (dir.path / "handmade.tfevents").string();
  const float value = 0.375f;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const double wall = 1234.5;
  uint64_t wall_bits;
  std::memcpy(&wall_bits, &wall, sizeof wall_bits);

  const std::string image_value = delimited(1, "img") + delimited(4, "png bytes");
  const std::string scalar_value = delimited(7, "node") + varint(2 << 3 | 5) + le(bits, 4) + delimited(1, "x/y");
  const std::string summary = delimited(1, image_value) + varint(9 << 3 | 0) + varint(1) +
                              delimited(1, scalar_value);
  const std::string event = delimited(5, summary) +                           // summary before step
                            varint(4 << 3 | 0) + varint(uint64_t{1} << 62) +  // unknown varint
                            varint(9 << 3 | 1) + le(7, 8) +                   // unknown fixed64
                            varint(10 << 3 | 5) + le(7, 4) +                  // unknown fixed32
                            delimited(99, "opaque") +                         // unknown bytes
                            varint(11 << 3 | 3) + varint(1 << 3 | 0) + varint(5) +
                            varint(12 << 3 | 3) + varint(12 << 3 | 4) +       // nested group
                            varint(11 << 3 | 4) +                             // end group
                            varint(2 << 3 | 0) + varint(42) + varint(1 << 3 | 1) + le(wall_bits, 8);
  write_all(path, record(delimited(3, "brain.Event:2")) + record(event));

  const std::vector<ScalarEvent> got = openba::read_tensorboard_scalars(path);
  REQUIRE(got.size() == 1);
  CHECK(got[0].tag == "x/y");
  CHECK(got[0].value == 0.375);
  CHECK(got[0].step == 42);
  CHECK(got[0].wall_time == 1234.5);

  // A record whose CRCs are right but whose protobuf is cut short is an error too.
  write_all(path, record(event.substr(0, event.size() - 3)));
  CHECK(error_of(path).find(path) != std::string::npos);
}

TEST_CASE("a writer that cannot create its directory throws naming it", "[tfevents]") {
  ScratchDir dir;
  const std::string blocker = (dir.path / "file").string();
  write_all(blocker, "x");
  try {
    openba::TensorBoardWriter writer(blocker + "/sub");
    FAIL("expected openba::Error");
  } catch (const openba::Error& e) {
    CHECK(std::string(e.what()).find(blocker) != std::string::npos);
  }
}
