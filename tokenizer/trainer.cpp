#include "tokenizer/trainer.h"

#include <sentencepiece_trainer.h>

#include <exception>

#include "tokenizer/document_reader.h"
#include "util/error.h"

// Exported by libsentencepiece but not declared in its 0.1.97 headers.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

namespace openba {
namespace {

// Feeds lines of documents to SentencePiece. Our errors are kept and
// reported through status() rather than thrown across SentencePiece's frames.
class LineIterator final : public sentencepiece::SentenceIterator {
 public:
  LineIterator(DocumentReader& reader, TrainSummary& summary) : reader_(reader), summary_(summary) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    try {
      while (true) {
        if (pos_ < doc_.text.size()) {
          size_t end = doc_.text.find('\n', pos_);
          if (end == std::string::npos) end = doc_.text.size();
          line_.assign(doc_.text, pos_, end - pos_);
          pos_ = end + 1;
          if (line_.find_first_not_of(" \t\r") == std::string::npos) continue;
          ++summary_.sentences;
          summary_.bytes += line_.size();
          return;
        }
        if (!reader_.next(doc_)) {
          done_ = true;
          return;
        }
        pos_ = 0;
      }
    } catch (...) {
      error_ = std::current_exception();
      done_ = true;
    }
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override {
    if (error_) return sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal, "input error");
    return sentencepiece::util::Status();
  }
  std::exception_ptr error() const { return error_; }

 private:
  DocumentReader& reader_;
  TrainSummary& summary_;
  Document doc_;
  size_t pos_ = 0;
  std::string line_;
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace

Tokenizer train_tokenizer(DocumentReader& reader, const TrainOptions& o, TrainSummary* summary) {
  if (o.vocab_size < 16) throw Error("--vocab-size must be at least 16 (got " + std::to_string(o.vocab_size) + ")");
  sentencepiece::logging::SetMinLogLevel(o.verbose ? 0 : 2);
  sentencepiece::SetRandomGeneratorSeed(o.seed);
  const std::string args =
      "--model_type=unigram --vocab_size=" + std::to_string(o.vocab_size) +
      " --character_coverage=" + std::to_string(o.character_coverage) +
      " --byte_fallback=true --split_digits=true --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
      " --max_sentence_length=16384 --shuffle_input_sentence=true --input_sentence_size=" +
      std::to_string(o.max_sentences) + " --num_threads=" + std::to_string(o.sentencepiece_threads);
  TrainSummary local;
  LineIterator lines(reader, summary ? *summary : local);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  if (lines.error()) std::rethrow_exception(lines.error());
  if (!status.ok()) throw Error("SentencePiece training failed: " + status.ToString());
  return Tokenizer::from_model_proto(model, "trained model");
}

}  // namespace openba
