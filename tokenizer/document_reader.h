// Documents from text corpora: plain text (one document per line, or per
// block of lines separated by blank lines) or JSONL with a text field, each
// possibly gzip- or zstd-compressed. Every document carries its file and
// first line so errors can name them. Invalid UTF-8, JSONL lines that are
// not objects or lack the field, and documents over the size limit are
// errors; whitespace-only documents are skipped and counted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace openba {

class ByteSource;

enum class TextFormat { kAuto, kText, kJsonl };
enum class DocumentSplit { kLine, kParagraph };

struct ReaderOptions {
  TextFormat format = TextFormat::kAuto;  // auto: .jsonl/.json (before .gz/.zst) is JSONL
  DocumentSplit split = DocumentSplit::kParagraph;  // for plain text
  std::string field = "text";                        // for JSONL
  uint64_t max_document_bytes = 8ull << 20;         // larger documents are an error
};

// Parses "auto|text|jsonl" and "line|paragraph"; Error naming the flag.
TextFormat parse_text_format(const std::string& text, const std::string& flag);
DocumentSplit parse_document_split(const std::string& text, const std::string& flag);

struct Document {
  std::string text;
  size_t input = 0;      // index into the reader's inputs
  uint64_t line = 0;     // first line of the document (1-based)
};

struct InputSummary {
  std::string path;
  uint64_t bytes = 0;    // on disk
  std::string sha256;    // of the bytes on disk
  std::string compression;
  uint64_t documents = 0;
  uint64_t skipped_empty = 0;
};

class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> paths, ReaderOptions options);
  ~DocumentReader();

  // The next non-empty document; false when every input is exhausted.
  bool next(Document& doc);

  // One entry per input; complete once next() has returned false.
  const std::vector<InputSummary>& inputs() const { return summaries_; }
  uint64_t skipped_empty() const;
  // On-disk bytes consumed so far over all inputs (for progress against file sizes).
  uint64_t raw_bytes_read() const;

 private:
  bool next_line(std::string& line);  // from the current input; false at its end
  bool open_next_input();
  void check_document(const std::string& text, uint64_t line) const;
  std::string where(uint64_t line) const;

  std::vector<std::string> paths_;
  ReaderOptions options_;
  std::vector<InputSummary> summaries_;
  std::unique_ptr<ByteSource> source_;
  uint64_t finished_raw_bytes_ = 0;
  bool jsonl_ = false;
  size_t current_ = 0;
  uint64_t line_number_ = 0;
  std::string buffer_;
  size_t buffer_pos_ = 0;
  bool source_done_ = true;
};


}  // namespace openba
