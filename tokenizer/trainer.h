// Training an OpenBA-style SentencePiece tokenizer on our document readers:
// unigram, byte fallback (no unknown characters), character coverage tuned
// for Chinese + English, pad/eos/unk = 0/1/2, no BOS; the 100 sentinels and
// <R>/<S>/<X> are appended after the pieces (see tokenizer.h).
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace openba {

class DocumentReader;

struct TrainOptions {
  int vocab_size = 8000;             // SentencePiece pieces (sentinels and R/S/X come on top)
  // SentencePiece's result depends on how many threads split its EM steps
  // (not on the cores): a fixed count gives the same model on every machine.
  // 16 is SentencePiece's own default and measured as fast as 2 on 2 cores.
  int sentencepiece_threads = 16;
  double character_coverage = 0.9995;
  uint64_t max_sentences = 5'000'000;  // sampled (seeded) when the corpus has more lines
  uint32_t seed = 0;
  bool verbose = false;              // SentencePiece's own training log
};

struct TrainSummary {
  uint64_t sentences = 0;  // lines fed to SentencePiece
  uint64_t bytes = 0;
};

// Trains on every non-empty line of the reader's documents. Errors in the
// input (file:line) and SentencePiece's own (e.g. a vocabulary larger than
// the corpus supports) are thrown as openba::Error.
Tokenizer train_tokenizer(DocumentReader& reader, const TrainOptions& options, TrainSummary* summary);

}  // namespace openba
