// --stage vocab: keep the most frequent pieces (plus every piece that must
// stay), rewrite spiece.model, slice the embedding / lm_head rows in the new
// order, and check the new tokenizer with openba-tokenize (a separate
// process: SentencePiece cannot be loaded next to LibTorch).
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <unistd.h>

#include "compress/stage_kind.h"
#include "compress/stages.h"
#include "runtime/checkpoint.h"
#include "arch/openba/layout.h"
#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "tokenizer/spiece_edit.h"
#include "tokenizer/token_stats.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

bool must_keep(PieceType t) {
  return t == PieceType::kControl || t == PieceType::kUnknown || t == PieceType::kByte || t == PieceType::kUserDefined;
}

class VocabStage : public Stage {
 public:
  explicit VocabStage(StageContext& ctx) : ctx_(ctx), o_(ctx.options) {}

  void validate() override {
    const TokenizerLayout& tok = ctx_.tokenizer();
    const SpieceModel model = parse_spiece_model(tok.model_proto(), ctx_.in.dir() + "/spiece.model");
    pieces_ = model.pieces;
    required_ = 0;
    for (const auto& p : pieces_) required_ += must_keep(p.type) ? 1 : 0;
    const int64_t pieces = static_cast<int64_t>(pieces_.size());
    (void)vocab_shape_after(ctx_.in.config(), o_, pieces, required_, {"--", "the input model"});
    const bool openba_layout = tok.extra_ids() == 100 && tok.added_tokens().size() == 3 && tok.has_mode_tokens() &&
                               tok.mode_id('R') == tok.piece_count() + 100;
    const bool t5_layout = tok.extra_ids() == 100 && tok.added_tokens().empty();
    if (!openba_layout && !t5_layout) {
      throw Error(ctx_.in.dir() + ": vocabulary pruning supports OpenBA's layout (100 sentinels, then <R>/<S>/<X>) "
                                  "and T5's (100 sentinels, the last ids) only");
    }
    corpus_ = o_.corpus;
    if (corpus_.empty() && !o_.calib.empty()) corpus_.push_back(o_.calib);
    if (corpus_.empty()) throw Error("--stage vocab needs --corpus SHARDS (token shards to count frequencies on)");
    for (const auto& dir : corpus_) {
      ShardSet::open(dir).require_tokenizer(tok.fingerprint(), "the model's tokenizer (--corpus " + dir + ")");
    }
    check_shards_ = !o_.eval.empty() && !is_jsonl_path(o_.eval) ? o_.eval : corpus_.front();
    if (!fs::is_regular_file(o_.tokenize_tool)) {
      throw Error("--tokenize-tool " + o_.tokenize_tool + ": not found (the vocabulary stage checks the new tokenizer with it)");
    }
  }

  nlohmann::ordered_json options_json() const override {
    nlohmann::ordered_json j;
    j["vocab"] = size_json(o_.vocab);
    j["min_freq"] = o_.min_freq;
    j["corpus"] = corpus_;
    j["eval"] = o_.eval;
    j["eval_samples_per_denoiser"] = o_.eval_samples;
    j["check_documents_from"] = check_shards_;
    return j;
  }

  SurgeryPlan plan() override {
    const TokenizerLayout& tok = ctx_.tokenizer();
    counts_.assign(static_cast<size_t>(tok.vocab_size()), 0);
    for (const auto& dir : corpus_) {
      const TokenStats stats = compute_token_stats(ShardSet::open(dir));
      for (size_t i = 0; i < stats.counts.size() && i < counts_.size(); ++i) counts_[i] += stats.counts[i];
      corpus_tokens_ += stats.tokens;
    }
    // The required pieces, then the most frequent others (ties: lower id).
    const int P = tok.piece_count();
    std::vector<bool> keep(static_cast<size_t>(P), false);
    std::vector<int> others;
    for (int i = 0; i < P; ++i) {
      if (must_keep(pieces_[i].type)) {
        keep[i] = true;
      } else if (counts_[i] >= static_cast<uint64_t>(o_.min_freq)) {
        others.push_back(i);
      }
    }
    std::stable_sort(others.begin(), others.end(), [&](int a, int b) { return counts_[a] > counts_[b]; });
    for (int64_t k = 0; k < o_.vocab - required_ && k < static_cast<int64_t>(others.size()); ++k) keep[others[k]] = true;
    const std::string proto = keep_spiece_pieces(tok.model_proto(), keep, ctx_.in.dir() + "/spiece.model");
    // Sentinels (and OpenBA's mode tokens) are re-appended after the kept pieces.
    new_tok_ = std::make_unique<TokenizerLayout>(
        TokenizerLayout::from_model_proto(proto, "the pruned spiece.model", tok.has_mode_tokens()));
    // old id -> new id (pieces in order, then sentinels and modes by name).
    map_.assign(static_cast<size_t>(tok.vocab_size()), -1);
    int next = 0;
    for (int i = 0; i < P; ++i) {
      if (keep[i]) map_[i] = next++;
    }
    for (int n = 0; n < tok.extra_ids(); ++n) map_[tok.sentinel_id(n)] = new_tok_->sentinel_id(n);
    if (tok.has_mode_tokens()) {
      for (char m : {'R', 'S', 'X'}) map_[tok.mode_id(m)] = new_tok_->mode_id(m);
    }
    inverse_.assign(static_cast<size_t>(new_tok_->vocab_size()), -1);
    for (size_t i = 0; i < map_.size(); ++i) {
      if (map_[i] < 0) continue;
      if (tok.id_to_piece(static_cast<int>(i)) != new_tok_->id_to_piece(map_[i])) {
        throw Error("vocabulary map: old id " + std::to_string(i) + " and new id " + std::to_string(map_[i]) +
                    " name different pieces (internal error)");
      }
      inverse_[map_[i]] = static_cast<int64_t>(i);
    }
    // Tokenizer files of the output.
    const fs::path tmp = fs::temp_directory_path() / ("openba-vocab-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    new_tok_->write_files(tmp.string());
    SurgeryPlan plan;
    for (const auto& e : fs::directory_iterator(tmp)) plan.files[e.path().filename().string()] = read_text_file(e.path().string());
    fs::remove_all(tmp);
    // The input's other tokenizer files describe the old pieces (a fast
    // tokenizer.json would make transformers encode with them): not copied.
    plan.copy_tokenizer_files = false;
    plan.out_config = ctx_.in.config();
    plan.out_config.vocab_size = new_tok_->padded_vocab_rows();
    plan.lm_head_tied = ctx_.in.lm_head_is_tied();
    const Checkpoint* in = &ctx_.in;
    const std::vector<int64_t>* inverse = &inverse_;
    const int64_t rows = plan.out_config.vocab_size;
    const ModelConfig in_config = ctx_.in.config();
    plan.produce = [in, inverse, rows, in_config](const std::string& name) {
      at::Tensor t = in->tensor(name);
      const auto spec = find_tensor_spec(name, in_config);
      if (!spec || !spec->vocabulary_rows) return t;
      // New row r is old row inverse[r]; padding rows are zero.
      std::vector<int64_t> shape = t.sizes().vec();
      shape[0] = rows;
      at::Tensor out = torch::zeros(shape, t.options());
      const int64_t n = static_cast<int64_t>(inverse->size());
      out.narrow(0, 0, n).copy_(t.index_select(0, torch::tensor(*inverse, torch::kLong)));
      return out;
    };
    plan.sources = [](const std::string& name) { return std::vector<std::string>{name}; };
    return plan;
  }

  const ExampleSet& heldout_for_output(const ExampleSet& heldout) override {
    remapped_ = heldout;
    auto remap = [&](std::vector<int64_t>& ids, bool labels) {
      for (auto& id : ids) {
        if (labels && id == -100) continue;
        ++heldout_tokens_;
        const int m = map_.at(static_cast<size_t>(id));
        if (m < 0) ++heldout_unk_;
        id = m < 0 ? new_tok_->unk_id() : m;
      }
    };
    for (auto& e : remapped_.examples) {
      remap(e.input_ids, false);
      remap(e.labels, true);
    }
    return remapped_;
  }

  void check_output(const std::string& staged) override {
    // Held-out text: documents of the check shards decoded by the old piece table.
    const TokenizerLayout& tok = ctx_.tokenizer();
    const ShardSet shards = ShardSet::open(check_shards_);
    const fs::path text = fs::path(staged) / ".vocab-check.jsonl";
    {
      std::ofstream f(text);
      const uint64_t docs = std::min<uint64_t>(shards.documents(), 2000);
      for (uint64_t d = 0; d < docs; ++d) {
        const auto ids32 = shards.document(d).to_vector();
        const std::vector<int> ids(ids32.begin(), ids32.end());
        f << nlohmann::json({{"text", tok.decode_pieces(ids, /*skip_special=*/true)}}).dump() << "\n";
      }
      if (!f) throw Error(text.string() + ": cannot write");
    }
    const std::string command = shell_quote(o_.tokenize_tool) + " compare --old " + shell_quote(ctx_.in.dir()) +
                                " --new " + shell_quote(staged) + " --format jsonl --input " + shell_quote(text.string());
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) throw Error("cannot run " + o_.tokenize_tool);
    std::string output;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
    const int status = pclose(pipe);
    fs::remove(text);
    try {
      check_ = nlohmann::ordered_json::parse(output);
    } catch (const nlohmann::json::exception&) {
      throw Error(o_.tokenize_tool + " compare failed (status " + std::to_string(status) + "): " + output);
    }
    if (check_.value("mismatches", 1) != 0) {
      throw Error("the pruned tokenizer encodes held-out text differently from the original for documents made only "
                  "of kept pieces: " + check_.dump());
    }
  }

  void add_report(nlohmann::ordered_json& report) override {
    const TokenizerLayout& tok = ctx_.tokenizer();
    nlohmann::ordered_json t;
    t["pieces_before"] = tok.piece_count();
    t["pieces_after"] = new_tok_->piece_count();
    t["ids_before"] = tok.vocab_size();
    t["ids_after"] = new_tok_->vocab_size();
    t["rows_before"] = ctx_.in.config().vocab_size;
    t["rows_after"] = new_tok_->padded_vocab_rows();
    t["required_pieces"] = required_;
    t["corpus_tokens"] = corpus_tokens_;
    uint64_t dropped = 0;
    for (size_t i = 0; i < map_.size(); ++i) dropped += map_[i] < 0 ? counts_[i] : 0;
    t["corpus_tokens_dropped_share"] = corpus_tokens_ ? static_cast<double>(dropped) / corpus_tokens_ : 0.0;
    t["coverage_curve"] = coverage_curve(tok.piece_count());
    t["check"] = check_;
    t["changed_token_share"] = check_.value("changed_token_share", 0.0);
    t["documents"] = check_.value("documents", int64_t{0});
    t["documents_all_kept"] = check_.value("documents_all_kept", int64_t{0});
    if (heldout_tokens_) t["heldout_tokens_mapped_to_unk_share"] = static_cast<double>(heldout_unk_) / heldout_tokens_;
    t["fingerprint_before"] = tok.fingerprint();
    t["fingerprint_after"] = new_tok_->fingerprint();
    report["tokenizer"] = t;
    nlohmann::ordered_json removed;
    auto list = nlohmann::ordered_json::array();
    for (int i = 0; i < tok.piece_count(); ++i) {
      if (map_[i] < 0) list.push_back({{"id", i}, {"piece", pieces_[i].text}, {"count", counts_[i]}});
    }
    removed["pieces"] = list;
    removed["reason"] = "least frequent in the corpus" + std::string(o_.min_freq > 0 ? " or below --min-freq" : "");
    report["removed"] = removed;
    report["removed_summary"] = std::to_string(list.size()) + " pieces (" + removed["reason"].get<std::string>() + ")";
    auto id_map = nlohmann::ordered_json::array();
    for (int m : map_) id_map.push_back(m);
    report["id_map"] = id_map;  // old id -> new id, -1 = removed
    if (heldout_tokens_) {
      report["heldout_note"] = "after: held-out ids mapped old -> new, removed pieces as <unk>";
    }
  }

 private:
  StageContext& ctx_;
  const CompressOptions& o_;
  std::vector<SpiecePiece> pieces_;
  int64_t required_ = 0;
  std::vector<std::string> corpus_;
  std::string check_shards_;
  // The share of corpus tokens the N most frequent pieces cover, for ~200
  // values of N from 1 to every piece: [[N, share], ...] (the report's chart).
  nlohmann::ordered_json coverage_curve(int pieces) const {
    std::vector<uint64_t> sorted(counts_.begin(), counts_.begin() + pieces);
    std::sort(sorted.begin(), sorted.end(), std::greater<uint64_t>());
    auto curve = nlohmann::ordered_json::array();
    if (corpus_tokens_ == 0 || pieces == 0) return curve;
    const int stride = std::max(1, pieces / 200);
    uint64_t covered = 0;
    for (int n = 1; n <= pieces; ++n) {
      covered += sorted[n - 1];
      if (n % stride == 0 || n == pieces || n == 1) curve.push_back({n, static_cast<double>(covered) / corpus_tokens_});
    }
    return curve;
  }

  std::vector<uint64_t> counts_;
  uint64_t corpus_tokens_ = 0;
  std::unique_ptr<TokenizerLayout> new_tok_;
  std::vector<int> map_;
  std::vector<int64_t> inverse_;
  ExampleSet remapped_;
  uint64_t heldout_tokens_ = 0, heldout_unk_ = 0;
  nlohmann::ordered_json check_;
};

}  // namespace

std::unique_ptr<Stage> make_vocab_stage(StageContext& ctx) { return std::make_unique<VocabStage>(ctx); }

}  // namespace openba
