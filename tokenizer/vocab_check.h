// Checks a pruned tokenizer against the one it came from: every document is
// encoded by both, the old ids are mapped to the new ones by piece text (and
// sentinel/mode names), independently of the map the pruning wrote. For a
// document whose old encoding uses only kept pieces the mapped ids must equal
// the new encoding exactly; the share of old tokens whose piece is gone is
// the coverage loss.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace openba {

class DocumentReader;
class Tokenizer;

struct VocabCheck {
  uint64_t documents = 0;
  uint64_t documents_all_kept = 0;  // old encoding uses only kept pieces
  uint64_t mismatches = 0;          // all-kept documents whose encodings differ (must be 0)
  uint64_t tokens = 0;              // old tokens over all documents
  uint64_t tokens_dropped = 0;      // old tokens whose piece the new tokenizer lacks
  uint64_t documents_identical = 0; // mapped old ids == new ids (all-kept or not)
  std::string first_mismatch;       // a description of the first mismatch
  nlohmann::ordered_json to_json() const;
};

VocabCheck compare_tokenizers(const Tokenizer& old_tokenizer, const Tokenizer& new_tokenizer, DocumentReader& reader);

}  // namespace openba
