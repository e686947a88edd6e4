// TensorBoard event files, written and read without TensorFlow or protobuf,
// so training can log scalars that `tensorboard --logdir` shows.
//
// Format: a sequence of TFRecord records, each
//   uint64 LE  length of data
//   uint32 LE  masked crc32c of the 8 length bytes
//   data       a serialized tensorflow.Event protobuf
//   uint32 LE  masked crc32c of data
// The first record carries file_version "brain.Event:2"; every later one a
// Summary with one Value{tag, simple_value}. The Event fields used are
//   Event   1 wall_time (double)  2 step (int64)  3 file_version (string)
//           5 summary (Summary)
//   Summary 1 value (repeated Value)
//   Value   1 tag (string)  2 simple_value (float)
// and are encoded by hand in tfevents.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace openba {

// CRC-32C (Castagnoli), as TFRecord uses; software, table-driven.
uint32_t crc32c(const void* data, size_t size);
// The TFRecord form: ((crc >> 15) | (crc << 17)) + 0xa282ead8, so that a CRC
// stored inside CRC-checked data does not checksum to a constant.
uint32_t masked_crc32c(const void* data, size_t size);

// Appends scalars to a new events.out.tfevents.<unix seconds>.<hostname> file
// in `directory` (created if missing). Throws Error naming the file on any
// failure to create or write it.
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& directory);
  ~TensorBoardWriter();  // flushes (errors ignored) and closes
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // `value` is stored as a 32-bit float (TensorBoard's simple_value);
  // `wall_time` is seconds since the Unix epoch.
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time);
  // Makes everything written so far durable (fflush + fsync).
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::string path_;
  std::FILE* file_ = nullptr;
};

// One scalar read back; `value` is the stored float, widened.
struct ScalarEvent {
  std::string tag;
  double value;
  int64_t step;
  double wall_time;
};

// Every simple_value in an event file, in file order. Verifies both CRCs of
// every record; throws Error naming the file and byte offset on a mismatch,
// truncation or malformed protobuf. Unknown fields and non-scalar values are
// skipped.
std::vector<ScalarEvent> read_tensorboard_scalars(const std::string& path);

}  // namespace openba
