#include "tokenizer/vocab_check.h"

#include <unordered_map>
#include <vector>

#include "tokenizer/document_reader.h"
#include "tokenizer/tokenizer.h"

namespace openba {

nlohmann::ordered_json VocabCheck::to_json() const {
  nlohmann::ordered_json j;
  j["documents"] = documents;
  j["documents_all_kept"] = documents_all_kept;
  j["documents_identical"] = documents_identical;
  j["mismatches"] = mismatches;
  j["tokens"] = tokens;
  j["tokens_dropped"] = tokens_dropped;
  j["changed_token_share"] = tokens ? static_cast<double>(tokens_dropped) / static_cast<double>(tokens) : 0.0;
  if (!first_mismatch.empty()) j["first_mismatch"] = first_mismatch;
  return j;
}

VocabCheck compare_tokenizers(const Tokenizer& old_tok, const Tokenizer& new_tok, DocumentReader& reader) {
  // old id -> new id by name; -1 when the new tokenizer lacks the piece.
  std::unordered_map<std::string, int> new_ids;
  for (int id = 0; id < new_tok.vocab_size(); ++id) new_ids.emplace(new_tok.id_to_piece(id), id);
  std::vector<int> map(static_cast<size_t>(old_tok.vocab_size()), -1);
  for (int id = 0; id < old_tok.vocab_size(); ++id) {
    auto it = new_ids.find(old_tok.id_to_piece(id));
    if (it != new_ids.end()) map[static_cast<size_t>(id)] = it->second;
  }
  VocabCheck check;
  Document doc;
  std::vector<int> a, b;
  while (reader.next(doc)) {
    old_tok.encode_into(doc.text, a);
    new_tok.encode_into(doc.text, b);
    ++check.documents;
    check.tokens += a.size();
    bool all_kept = true;
    std::vector<int> mapped;
    mapped.reserve(a.size());
    for (int id : a) {
      const int m = map[static_cast<size_t>(id)];
      if (m < 0) {
        all_kept = false;
        ++check.tokens_dropped;
      }
      mapped.push_back(m);
    }
    if (mapped == b) ++check.documents_identical;
    if (!all_kept) continue;
    ++check.documents_all_kept;
    if (mapped != b) {
      if (check.mismatches++ == 0) {
        check.first_mismatch = "document at line " + std::to_string(doc.line) + ": " + std::to_string(a.size()) +
                               " old tokens, " + std::to_string(b.size()) + " new tokens";
      }
    }
  }
  return check;
}

}  // namespace openba
