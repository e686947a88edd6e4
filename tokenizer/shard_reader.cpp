#include "tokenizer/shard_reader.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/mapped_file.h"
#include "util/counter_random.h"
#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;

namespace {
uint64_t read_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

void TokenView::copy_to(int32_t* out) const {
  for (size_t i = 0; i < size_; ++i) out[i] = (*this)[i];
}

std::vector<int32_t> TokenView::to_vector() const {
  std::vector<int32_t> out(size_);
  copy_to(out.data());
  return out;
}

uint64_t ShardSet::Shard::offset(uint64_t local_doc) const { return read_u64(index->data() + 8 * local_doc); }

ShardSet ShardSet::open(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / "manifest.json").string();
  if (!fs::is_regular_file(manifest_path)) throw Error(dir + ": not a token shard set (no manifest.json)");
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(read_text_file(manifest_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(manifest_path + ": malformed JSON: " + e.what());
  }
  ShardSet set;
  set.dir_ = dir;
  try {
    if (m.at("format") != "openba-token-shards") throw Error(manifest_path + ": not an openba token shard manifest");
    if (m.at("version").get<int>() != 1) throw Error(manifest_path + ": unsupported version " + m.at("version").dump());
    set.fingerprint_ = m.at("tokenizer").at("fingerprint").get<std::string>();
    set.vocab_size_ = m.at("tokenizer").at("vocab_size").get<int>();
    const std::string dtype = m.at("token_dtype").get<std::string>();
    if (dtype != "uint16" && dtype != "uint32") throw Error(manifest_path + ": unknown token_dtype " + dtype);
    set.width_ = dtype == "uint16" ? 2 : 4;
    for (const auto& s : m.at("shards")) {
      Shard shard;
      const std::string tokens_path = (fs::path(dir) / s.at("tokens_file").get<std::string>()).string();
      const std::string index_path = (fs::path(dir) / s.at("index_file").get<std::string>()).string();
      shard.documents = s.at("documents").get<uint64_t>();
      shard.tokens_count = s.at("tokens").get<uint64_t>();
      shard.tokens = MappedFile::open(tokens_path);
      shard.index = MappedFile::open(index_path);
      if (shard.tokens->size() != shard.tokens_count * set.width_) {
        throw Error(tokens_path + ": holds " + std::to_string(shard.tokens->size()) + " bytes, manifest says " +
                    std::to_string(shard.tokens_count) + " tokens of " + std::to_string(set.width_) + " bytes");
      }
      if (shard.index->size() != (shard.documents + 1) * 8) {
        throw Error(index_path + ": holds " + std::to_string(shard.index->size()) + " bytes, manifest says " +
                    std::to_string(shard.documents) + " documents");
      }
      // Offsets start at 0, never decrease (documents are non-empty), end at the token count.
      uint64_t previous = shard.offset(0);
      if (previous != 0) throw Error(index_path + ": first offset is not 0");
      for (uint64_t d = 1; d <= shard.documents; ++d) {
        const uint64_t next = shard.offset(d);
        if (next <= previous) throw Error(index_path + ": document " + std::to_string(d - 1) + " has no tokens or a bad offset");
        previous = next;
      }
      if (previous != shard.tokens_count) throw Error(index_path + ": last offset does not match the token count");
      shard.first_document = set.documents_;
      shard.first_token = set.tokens_;
      set.documents_ += shard.documents;
      set.tokens_ += shard.tokens_count;
      set.shards_.push_back(std::move(shard));
    }
    if (set.documents_ != m.at("documents").get<uint64_t>() || set.tokens_ != m.at("tokens").get<uint64_t>()) {
      throw Error(manifest_path + ": totals do not match its shards");
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(manifest_path + ": missing or malformed field (" + e.what() + ")");
  }
  return set;
}

const ShardSet::Shard& ShardSet::shard_of_document(uint64_t doc) const {
  if (doc >= documents_) {
    throw Error(dir_ + ": document " + std::to_string(doc) + " out of range (" + std::to_string(documents_) + " documents)");
  }
  auto it = std::upper_bound(shards_.begin(), shards_.end(), doc,
                             [](uint64_t d, const Shard& s) { return d < s.first_document; });
  return *std::prev(it);
}

size_t ShardSet::document_length(uint64_t doc) const {
  const Shard& s = shard_of_document(doc);
  const uint64_t local = doc - s.first_document;
  return static_cast<size_t>(s.offset(local + 1) - s.offset(local));
}

TokenView ShardSet::document(uint64_t doc) const {
  const Shard& s = shard_of_document(doc);
  const uint64_t local = doc - s.first_document;
  const uint64_t begin = s.offset(local);
  return TokenView(s.tokens->data() + begin * width_, static_cast<size_t>(s.offset(local + 1) - begin), width_);
}

void ShardSet::read_tokens(uint64_t begin, uint64_t count, int32_t* out) const {
  if (begin > tokens_ || count > tokens_ - begin) {
    throw Error(dir_ + ": token range [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                ") out of range (" + std::to_string(tokens_) + " tokens)");
  }
  auto it = std::upper_bound(shards_.begin(), shards_.end(), begin,
                             [](uint64_t t, const Shard& s) { return t < s.first_token; });
  for (auto s = std::prev(it); count > 0; ++s) {
    const uint64_t local = begin - s->first_token;
    const uint64_t n = std::min(count, s->tokens_count - local);
    TokenView(s->tokens->data() + local * width_, static_cast<size_t>(n), width_).copy_to(out);
    out += n;
    begin += n;
    count -= n;
  }
}

void ShardSet::require_tokenizer(const std::string& fingerprint, const std::string& what) const {
  if (fingerprint != fingerprint_) {
    throw Error(dir_ + ": token shards were made with tokenizer " + fingerprint_.substr(0, 16) + "..., but " + what +
                " uses tokenizer " + fingerprint.substr(0, 16) + "... (re-encode the corpus with that tokenizer)");
  }
}

ShardMixture::ShardMixture(std::vector<Source> sources) : sources_(std::move(sources)) {
  if (sources_.empty()) throw Error("shard mixture: no sources");
  double total = 0;
  for (const auto& s : sources_) {
    if (!(s.weight > 0)) throw Error("shard mixture: weights must be positive (" + s.shards->dir() + ")");
    total += s.weight;
    cumulative_.push_back(total);
  }
  for (double& c : cumulative_) c /= total;
}

ShardMixture::Draw ShardMixture::draw(uint64_t seed, uint64_t i) const {
  const double u = counter_uniform(seed, 0, i);
  size_t source = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
  source = std::min(source, sources_.size() - 1);
  const uint64_t docs = sources_[source].shards->documents();
  return {source, counter_hash(seed, 1, i) % docs};
}

}  // namespace openba
