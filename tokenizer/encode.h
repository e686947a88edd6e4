// Encoding a corpus into token shards: documents are read in order, encoded
// in parallel on the worker pool a window at a time, and written in input
// order, so the output is identical whatever the thread count.
#pragma once

#include <cstdint>

namespace openba {

class DocumentReader;
class ShardWriter;
class Tokenizer;
class Progress;

struct EncodeSummary {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  uint64_t text_bytes = 0;
};

EncodeSummary encode_corpus(DocumentReader& reader, const Tokenizer& tokenizer, ShardWriter& writer,
                            Progress* progress);

}  // namespace openba
