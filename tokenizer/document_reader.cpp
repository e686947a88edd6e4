#include "tokenizer/document_reader.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "tokenizer/byte_source.h"
#include "util/error.h"
#include "util/utf8.h"

namespace openba {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(const std::string& s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v') return false;
  }
  return true;
}

bool looks_like_jsonl(std::string path) {
  for (const char* ext : {".gz", ".zst", ".zstd"}) {
    if (ends_with(path, ext)) path.resize(path.size() - std::string(ext).size());
  }
  return ends_with(path, ".jsonl") || ends_with(path, ".json");
}

}  // namespace

TextFormat parse_text_format(const std::string& text, const std::string& flag) {
  if (text == "auto") return TextFormat::kAuto;
  if (text == "text") return TextFormat::kText;
  if (text == "jsonl") return TextFormat::kJsonl;
  throw Error(flag + ": unknown format '" + text + "' (expected auto, text or jsonl)");
}

DocumentSplit parse_document_split(const std::string& text, const std::string& flag) {
  if (text == "line") return DocumentSplit::kLine;
  if (text == "paragraph") return DocumentSplit::kParagraph;
  throw Error(flag + ": unknown split '" + text + "' (expected line or paragraph)");
}

DocumentReader::DocumentReader(std::vector<std::string> paths, ReaderOptions options)
    : paths_(std::move(paths)), options_(std::move(options)) {
  if (paths_.empty()) throw Error("no input files given");
}

DocumentReader::~DocumentReader() = default;

uint64_t DocumentReader::skipped_empty() const {
  uint64_t total = 0;
  for (const auto& s : summaries_) total += s.skipped_empty;
  return total;
}

uint64_t DocumentReader::raw_bytes_read() const {
  return finished_raw_bytes_ + (source_ ? source_->raw_bytes() : 0);
}

std::string DocumentReader::where(uint64_t line) const { return paths_[current_] + ":" + std::to_string(line); }

bool DocumentReader::open_next_input() {
  if (source_) {
    // Finish the summary of the input just read.
    InputSummary& s = summaries_.back();
    s.bytes = source_->raw_bytes();
    s.sha256 = source_->raw_sha256();
    finished_raw_bytes_ += s.bytes;
    source_.reset();
    ++current_;
  }
  if (current_ >= paths_.size()) return false;
  source_ = ByteSource::open(paths_[current_]);
  InputSummary summary;
  summary.path = paths_[current_];
  summary.compression = source_->compression();
  summaries_.push_back(summary);
  jsonl_ = options_.format == TextFormat::kJsonl ||
           (options_.format == TextFormat::kAuto && looks_like_jsonl(paths_[current_]));
  line_number_ = 0;
  buffer_.clear();
  buffer_pos_ = 0;
  source_done_ = false;
  return true;
}

bool DocumentReader::next_line(std::string& line) {
  line.clear();
  bool any = false;
  bool too_long = false;
  while (true) {
    if (buffer_pos_ >= buffer_.size()) {
      if (source_done_) break;
      buffer_.resize(1 << 20);
      const size_t n = source_->read(buffer_.data(), buffer_.size());
      buffer_.resize(n);
      buffer_pos_ = 0;
      if (n == 0) {
        source_done_ = true;
        break;
      }
    }
    any = true;
    const char* start = buffer_.data() + buffer_pos_;
    const size_t avail = buffer_.size() - buffer_pos_;
    const void* nl = std::memchr(start, '\n', avail);
    const size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) : avail;
    // Keep memory bounded on absurd lines: stop accumulating past the limit.
    if (!too_long) {
      if (line.size() + take > options_.max_document_bytes) {
        too_long = true;
      } else {
        line.append(start, take);
      }
    }
    buffer_pos_ += take + (nl ? 1 : 0);
    if (nl) break;
  }
  if (!any) return false;
  ++line_number_;
  if (too_long) {
    throw Error(where(line_number_) + ": line longer than the " + std::to_string(options_.max_document_bytes) +
                "-byte document limit (--max-document-bytes)");
  }
  return true;
}

void DocumentReader::check_document(const std::string& text, uint64_t line) const {
  if (text.size() > options_.max_document_bytes) {
    throw Error(where(line) + ": document of " + std::to_string(text.size()) + " bytes exceeds the " +
                std::to_string(options_.max_document_bytes) + "-byte limit (--max-document-bytes)");
  }
  const size_t bad = find_invalid_utf8(text);
  if (bad != std::string::npos) {
    throw Error(where(line) + ": invalid UTF-8 at byte " + std::to_string(bad) + " of the document");
  }
}

bool DocumentReader::next(Document& doc) {
  std::string line;
  while (true) {
    if (!source_ || (source_done_ && buffer_pos_ >= buffer_.size())) {
      if (!open_next_input()) return false;
    }
    if (jsonl_) {
      if (!next_line(line)) continue;
      if (is_blank(line)) continue;  // blank lines between records are not documents
      const uint64_t at = line_number_;
      nlohmann::json record;
      try {
        record = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw Error(where(at) + ": not valid JSON (" + e.what() + ")");
      }
      if (!record.is_object()) throw Error(where(at) + ": JSONL line is not an object");
      auto it = record.find(options_.field);
      if (it == record.end()) throw Error(where(at) + ": no \"" + options_.field + "\" field (--field)");
      if (!it->is_string()) throw Error(where(at) + ": field \"" + options_.field + "\" is not a string");
      doc.text = it->get<std::string>();
      doc.line = at;
    } else if (options_.split == DocumentSplit::kLine) {
      if (!next_line(line)) continue;
      doc.text = std::move(line);
      doc.line = line_number_;
    } else {
      // Paragraphs: lines up to a blank line, joined with '\n'.
      doc.text.clear();
      doc.line = 0;
      while (next_line(line)) {
        if (is_blank(line)) {
          if (doc.line != 0) break;
          continue;
        }
        if (doc.line == 0) doc.line = line_number_;
        if (!doc.text.empty()) doc.text.push_back('\n');
        doc.text += line;
        if (doc.text.size() > options_.max_document_bytes) check_document(doc.text, doc.line);
      }
      if (doc.line == 0) continue;  // only blank lines were left
    }
    doc.input = current_;
    check_document(doc.text, doc.line);
    if (is_blank(doc.text)) {
      ++summaries_.back().skipped_empty;
      continue;
    }
    ++summaries_.back().documents;
    return true;
  }
}

}  // namespace openba
