#include "tokenizer/encode.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tokenizer/document_reader.h"
#include "tokenizer/shard_writer.h"
#include "tokenizer/tokenizer.h"
#include "util/progress.h"
#include "util/thread_pool.h"

namespace openba {
namespace {

// A window holds this much text (or this many documents): enough work to
// keep every thread busy, little enough to bound memory.
constexpr size_t kWindowBytes = 4 << 20;
constexpr size_t kWindowDocuments = 8192;
constexpr size_t kWindowsAhead = 2;

struct Window {
  std::vector<Document> docs;
  size_t text_bytes = 0;
  uint64_t raw_bytes_read = 0;  // reader position after this window
  bool last = false;
};

// Reads windows on its own thread so reading overlaps encoding; input
// errors are carried to the consumer and rethrown there.
class WindowReader {
 public:
  explicit WindowReader(DocumentReader& reader) : reader_(reader), thread_([this] { run(); }) {}
  ~WindowReader() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  Window next() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || error_; });
    if (ready_.empty() && error_) std::rethrow_exception(error_);
    Window w = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return w;
  }

 private:
  void run() {
    try {
      bool more = true;
      while (more) {
        Window w;
        while (w.text_bytes < kWindowBytes && w.docs.size() < kWindowDocuments) {
          w.docs.emplace_back();
          if (!reader_.next(w.docs.back())) {
            w.docs.pop_back();
            more = false;
            break;
          }
          w.text_bytes += w.docs.back().text.size();
        }
        w.raw_bytes_read = reader_.raw_bytes_read();
        w.last = !more;
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || ready_.size() < kWindowsAhead; });
        if (stop_) return;
        ready_.push_back(std::move(w));
        changed_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
    }
  }

  DocumentReader& reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Window> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace

EncodeSummary encode_corpus(DocumentReader& reader, const Tokenizer& tokenizer, ShardWriter& writer,
                            Progress* progress) {
  EncodeSummary summary;
  std::vector<std::vector<int>> ids;
  uint64_t reported = 0;  // raw input bytes already counted in progress
  WindowReader windows(reader);
  while (true) {
    Window w = windows.next();
    if (ids.size() < w.docs.size()) ids.resize(w.docs.size());
    parallel_for(static_cast<int64_t>(w.docs.size()), 8, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) tokenizer.encode_into(w.docs[i].text, ids[i]);
    });
    for (size_t i = 0; i < w.docs.size(); ++i) {
      // Whitespace-only documents were skipped by the reader; text that still
      // yields no tokens (only characters normalization removes) is skipped
      // rather than stored empty.
      if (ids[i].empty()) continue;
      writer.add(ids[i].data(), ids[i].size());
      summary.tokens += ids[i].size();
      ++summary.documents;
    }
    summary.text_bytes += w.text_bytes;
    if (progress) progress->advance(w.raw_bytes_read - reported);
    reported = w.raw_bytes_read;
    if (w.last) break;
  }
  return summary;
}

}  // namespace openba
