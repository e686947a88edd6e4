#include "util/tfevents.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace openba {
namespace {

// Reflected CRC-32C table, built at compile time.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Protobuf wire types (groups, 3 and 4, are only ever skipped).
enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kGroupStart = 3, kGroupEnd = 4, kFixed32 = 5 };

// Encoding. Byte by byte, so the output is little-endian on any host.
void put_fixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, Wire wire) { put_varint(out, (uint64_t{field} << 3) | wire); }
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed64);
  put_fixed(out, bits, 8);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed32);
  put_fixed(out, bits, 4);
}

// An Event with wall_time and step set (both written even when zero; proto3
// readers accept that).
std::string event_header(double wall_time, int64_t step) {
  std::string event;
  put_double(event, 1, wall_time);
  put_key(event, 2, kVarint);
  put_varint(event, static_cast<uint64_t>(step));
  return event;
}

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// Decoding: a view of one message's bytes inside the whole file, so errors
// can name the exact file offset.
struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
  const uint8_t* file_begin;
  const std::string* path;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(*path + ": " + what + " at byte offset " + std::to_string(p - file_begin));
  }
  bool done() const { return p == end; }
  uint64_t fixed(int bytes) {
    if (end - p < bytes) fail("truncated fixed-width protobuf field");
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
    p += bytes;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) fail("truncated protobuf varint");
      const uint8_t b = *p++;
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    fail("protobuf varint longer than 10 bytes");
  }
  // A length-delimited field's contents; advances past them.
  Cursor bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p)) fail("protobuf length runs past its message");
    Cursor inner{p, p + n, file_begin, path};
    p += n;
    return inner;
  }
  // Reads a key; returns the field number, sets `wire`.
  uint32_t key(uint32_t& wire) {
    const uint64_t k = varint();
    wire = static_cast<uint32_t>(k & 7);
    if ((k >> 3) == 0 || (k >> 3) > 0x1fffffff) fail("invalid protobuf field number");
    return static_cast<uint32_t>(k >> 3);
  }
  // Skips one unknown field whose key was just read. Groups nest, so depth is
  // bounded to keep hostile input from exhausting the stack.
  void skip(uint32_t field, uint32_t wire, int depth = 0) {
    switch (wire) {
      case kVarint: varint(); return;
      case kFixed64: fixed(8); return;
      case kBytes: bytes(); return;
      case kFixed32: fixed(4); return;
      case kGroupStart:
        if (depth >= 64) fail("protobuf groups nested too deeply");
        for (;;) {
          uint32_t inner_wire;
          const uint32_t inner = key(inner_wire);
          if (inner_wire == kGroupEnd) {
            if (inner != field) fail("mismatched protobuf group end");
            return;
          }
          skip(inner, inner_wire, depth + 1);
        }
      default: fail("unexpected protobuf wire type " + std::to_string(wire));
    }
  }
};

// Appends the simple_values of one Summary to `out` (tag and value only).
void decode_summary(Cursor summary, std::vector<ScalarEvent>& out) {
  while (!summary.done()) {
    uint32_t wire;
    const uint32_t field = summary.key(wire);
    if (field != 1 || wire != kBytes) {
      summary.skip(field, wire);
      continue;
    }
    Cursor value = summary.bytes();
    ScalarEvent event{};
    bool has_simple_value = false;
    while (!value.done()) {
      const uint32_t f = value.key(wire);
      if (f == 1 && wire == kBytes) {
        const Cursor tag = value.bytes();
        event.tag.assign(reinterpret_cast<const char*>(tag.p), tag.end - tag.p);
      } else if (f == 2 && wire == kFixed32) {
        const uint32_t bits = static_cast<uint32_t>(value.fixed(4));
        float v;
        std::memcpy(&v, &bits, sizeof v);
        event.value = v;
        has_simple_value = true;
      } else {
        value.skip(f, wire);
      }
    }
    if (has_simple_value) out.push_back(std::move(event));  // images, histograms...: not scalars
  }
}

// Appends the scalars of one Event to `out`. Fields may come in any order,
// so step and wall_time are filled in once the whole Event is read.
void decode_event(Cursor event, std::vector<ScalarEvent>& out) {
  const size_t first = out.size();
  double wall_time = 0;
  int64_t step = 0;
  while (!event.done()) {
    uint32_t wire;
    const uint32_t field = event.key(wire);
    if (field == 1 && wire == kFixed64) {
      const uint64_t bits = event.fixed(8);
      std::memcpy(&wall_time, &bits, sizeof wall_time);
    } else if (field == 2 && wire == kVarint) {
      step = static_cast<int64_t>(event.varint());
    } else if (field == 5 && wire == kBytes) {
      decode_summary(event.bytes(), out);
    } else {
      event.skip(field, wire);  // file_version and anything else
    }
  }
  for (size_t i = first; i < out.size(); ++i) {
    out[i].step = step;
    out[i].wall_time = wall_time;
  }
}

uint32_t load_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) c = kCrc32cTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) throw Error(directory + ": cannot create directory: " + ec.message());
  path_ = (std::filesystem::path(directory) /
           ("events.out.tfevents." + std::to_string(std::time(nullptr)) + "." + hostname()))
              .string();
  // "x": never clobber another writer's file that got the same name.
  file_ = std::fopen(path_.c_str(), "wbx");
  if (!file_) throw Error(path_ + ": cannot create event file: " + std::strerror(errno));
  std::string event = event_header(unix_time_now(), 0);
  put_bytes(event, 3, "brain.Event:2");
  write_record(event);
  flush();  // so TensorBoard sees a valid file at once
}

TensorBoardWriter::~TensorBoardWriter() {
  std::fflush(file_);
  ::fsync(::fileno(file_));
  std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  std::string v;
  put_bytes(v, 1, tag);
  put_float(v, 2, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, v);
  std::string event = event_header(wall_time, step);
  put_bytes(event, 5, summary);
  write_record(event);
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    throw Error(path_ + ": flush failed: " + std::strerror(errno));
  }
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string record;
  put_fixed(record, data.size(), 8);
  put_fixed(record, masked_crc32c(record.data(), 8), 4);
  record += data;
  put_fixed(record, masked_crc32c(data.data(), data.size()), 4);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
    throw Error(path_ + ": write failed: " + std::strerror(errno));
  }
}

std::vector<ScalarEvent> read_tensorboard_scalars(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  const std::string bytes = buffer.str();
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t size = bytes.size();

  std::vector<ScalarEvent> scalars;
  size_t offset = 0;
  auto fail = [&](const std::string& what) {
    throw Error(path + ": " + what + " at byte offset " + std::to_string(offset));
  };
  while (offset < size) {
    if (size - offset < 12) fail("truncated record header");
    const uint8_t* header = begin + offset;
    if (load_u32(header + 8) != masked_crc32c(header, 8)) fail("record length CRC mismatch");
    uint64_t length = 0;
    for (int i = 0; i < 8; ++i) length |= uint64_t{header[i]} << (8 * i);
    if (length > size - offset - 12 || size - offset - 12 - length < 4) fail("truncated record");
    const uint8_t* data = header + 12;
    if (load_u32(data + length) != masked_crc32c(data, length)) fail("record data CRC mismatch");
    decode_event(Cursor{data, data + length, begin, &path}, scalars);
    offset += 12 + length + 4;
  }
  return scalars;
}

}  // namespace openba
