// openba-tokenize: train an OpenBA-style SentencePiece tokenizer, encode text
// corpora into token shards, and inspect shards (stats, dump).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tokenizer/continuation_task.h"
#include "tokenizer/document_reader.h"
#include "tokenizer/encode.h"
#include "tokenizer/shard_reader.h"
#include "tokenizer/shard_writer.h"
#include "tokenizer/token_stats.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/trainer.h"
#include "tokenizer/vocab_check.h"
#include "tools/cli_common.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/resources.h"
#include "util/thread_pool.h"

namespace {

struct InputFlags {
  std::vector<std::string> inputs;
  std::string format = "auto", split = "paragraph", field = "text", max_document = "8MiB";

  void add_to(CLI::App* cmd) {
    cmd->add_option("--input", inputs, "text, JSONL, or gzip/zstd of either (one or more)")->required();
    cmd->add_option("--format", format, "auto (JSONL for .jsonl/.json), text or jsonl");
    cmd->add_option("--split", split, "plain text documents: paragraph (blank-line separated) or line");
    cmd->add_option("--field", field, "JSONL field holding the text (default text)");
    cmd->add_option("--max-document-bytes", max_document, "larger documents are an error (default 8MiB)");
  }
  openba::ReaderOptions options() const {
    openba::ReaderOptions o;
    o.format = openba::parse_text_format(format, "--format");
    o.split = openba::parse_document_split(split, "--split");
    o.field = field;
    o.max_document_bytes = openba::parse_byte_size(max_document, "--max-document-bytes");
    return o;
  }
};

uint64_t total_file_bytes(const std::vector<std::string>& paths) {
  uint64_t total = 0;
  for (const auto& p : paths) total += openba::file_size(p);
  return total;
}

int run_train(const InputFlags& in, int vocab, double coverage, uint64_t max_sentences, uint32_t seed,
              const std::string& out, bool force, bool verbose) {
  openba::DocumentReader reader(in.inputs, in.options());
  openba::TrainOptions options;
  options.vocab_size = vocab;
  options.character_coverage = coverage;
  options.max_sentences = max_sentences;
  options.seed = seed;
  options.verbose = verbose;
  if (std::filesystem::exists(out) && !force) throw openba::Error(out + ": already exists (use --force to replace it)");
  openba::Stopwatch clock;
  openba::TrainSummary summary;
  const openba::Tokenizer tokenizer = openba::train_tokenizer(reader, options, &summary);
  openba::StagingDir staging(out);
  tokenizer.write_files(staging.path());
  staging.commit(force);
  std::printf("trained %s in %s: %d pieces + %d sentinels + <R>/<S>/<X> = %d ids (embedding rows %d) from %llu lines "
              "(%s); fingerprint %s\n",
              staging.final_path().c_str(), openba::human_duration(clock.seconds()).c_str(), tokenizer.piece_count(),
              tokenizer.extra_ids(), tokenizer.vocab_size(), tokenizer.padded_vocab_rows(),
              (unsigned long long)summary.sentences, openba::human_bytes(summary.bytes).c_str(),
              tokenizer.fingerprint().substr(0, 16).c_str());
  return 0;
}

int run_encode(const InputFlags& in, const std::string& tokenizer_dir, const std::string& out, uint64_t shard_tokens,
               bool force, bool quiet) {
  const openba::Tokenizer tokenizer = openba::Tokenizer::load(tokenizer_dir);
  openba::DocumentReader reader(in.inputs, in.options());
  openba::ShardWriterOptions options;
  options.max_shard_tokens = shard_tokens;
  options.overwrite = force;
  options.provenance = {{"format", in.format}, {"split", in.split}, {"field", in.field}};
  openba::ShardWriter writer(out, tokenizer.info(), options);
  openba::Stopwatch clock;
  openba::Progress progress("encode", total_file_bytes(in.inputs), "bytes", !quiet);
  const openba::EncodeSummary summary = openba::encode_corpus(reader, tokenizer, writer, &progress);
  progress.finish();
  const std::string path = writer.commit(reader.inputs());
  const double s = clock.seconds();
  std::printf("wrote %s: %llu documents, %llu tokens (%llu empty documents skipped); %.2f MB/s of text, %.0f tokens/s\n",
              path.c_str(), (unsigned long long)writer.documents(), (unsigned long long)writer.tokens(),
              (unsigned long long)reader.skipped_empty(), summary.text_bytes / s / 1e6, summary.tokens / s);
  return 0;
}

int run_stats(const std::string& dir, const std::string& tokenizer_dir, int top, const std::string& freq_out, bool json) {
  const openba::ShardSet shards = openba::ShardSet::open(dir);
  std::unique_ptr<openba::Tokenizer> tokenizer;
  if (!tokenizer_dir.empty()) {
    tokenizer = std::make_unique<openba::Tokenizer>(openba::Tokenizer::load(tokenizer_dir));
    shards.require_tokenizer(tokenizer->fingerprint(), "--tokenizer " + tokenizer_dir);
  }
  const openba::TokenStats stats = openba::compute_token_stats(shards);
  std::vector<std::pair<uint64_t, int>> ranked;
  for (size_t id = 0; id < stats.counts.size(); ++id) {
    if (stats.counts[id] > 0) ranked.emplace_back(stats.counts[id], static_cast<int>(id));
  }
  std::sort(ranked.begin(), ranked.end(), [](auto a, auto b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  auto piece = [&](int id) { return tokenizer ? tokenizer->id_to_piece(id) : std::string(); };
  if (!freq_out.empty()) {
    nlohmann::ordered_json f;
    f["tokenizer_fingerprint"] = shards.tokenizer_fingerprint();
    f["vocab_size"] = shards.vocab_size();
    f["documents"] = stats.documents;
    f["tokens"] = stats.tokens;
    f["counts"] = stats.counts;
    openba::StagingDir::write_file_atomically(freq_out, f.dump() + "\n");
  }
  const double pcts[] = {10, 50, 90, 99, 100};
  if (json) {
    nlohmann::ordered_json o;
    o["documents"] = stats.documents;
    o["tokens"] = stats.tokens;
    o["distinct_tokens"] = ranked.size();
    nlohmann::ordered_json lengths;
    for (double p : pcts) lengths["p" + std::to_string(static_cast<int>(p))] = stats.length_percentile(p);
    lengths["mean"] = stats.documents ? static_cast<double>(stats.tokens) / stats.documents : 0.0;
    o["document_tokens"] = lengths;
    auto topk = nlohmann::ordered_json::array();
    for (int i = 0; i < top && i < static_cast<int>(ranked.size()); ++i) {
      nlohmann::ordered_json e = {{"id", ranked[i].second}, {"count", ranked[i].first}};
      if (tokenizer) e["piece"] = piece(ranked[i].second);
      topk.push_back(e);
    }
    o["top"] = topk;
    std::printf("%s\n", o.dump(2).c_str());
    return 0;
  }
  std::printf("shards     %s\n", dir.c_str());
  std::printf("documents  %llu\ntokens     %llu (%zu distinct of %d ids)\n", (unsigned long long)stats.documents,
              (unsigned long long)stats.tokens, ranked.size(), shards.vocab_size());
  std::printf("tokens per document: p10 %u  p50 %u  p90 %u  p99 %u  max %u  mean %.1f\n", stats.length_percentile(10),
              stats.length_percentile(50), stats.length_percentile(90), stats.length_percentile(99),
              stats.length_percentile(100), stats.documents ? double(stats.tokens) / stats.documents : 0.0);
  std::printf("top %d tokens\n", top);
  for (int i = 0; i < top && i < static_cast<int>(ranked.size()); ++i) {
    std::printf("  %8d  %12llu  %6.2f%%  %s\n", ranked[i].second, (unsigned long long)ranked[i].first,
                100.0 * ranked[i].first / std::max<uint64_t>(1, stats.tokens), piece(ranked[i].second).c_str());
  }
  return 0;
}

int run_dump(const std::string& dir, uint64_t first, uint64_t count, const std::string& tokenizer_dir) {
  const openba::ShardSet shards = openba::ShardSet::open(dir);
  std::unique_ptr<openba::Tokenizer> tokenizer;
  if (!tokenizer_dir.empty()) {
    tokenizer = std::make_unique<openba::Tokenizer>(openba::Tokenizer::load(tokenizer_dir));
    shards.require_tokenizer(tokenizer->fingerprint(), "--tokenizer " + tokenizer_dir);
  }
  const uint64_t end = count == 0 ? shards.documents() : std::min(shards.documents(), first + count);
  std::string line;
  for (uint64_t d = first; d < end; ++d) {
    const auto ids = shards.document(d).to_vector();
    if (tokenizer) {
      std::printf("%s\n", tokenizer->decode(std::vector<int>(ids.begin(), ids.end())).c_str());
      continue;
    }
    line.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line.push_back(' ');
      line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

int run_make_task(const std::string& dir, const std::string& tokenizer_dir, const openba::ContinuationTaskOptions& o,
                  const std::string& out) {
  const openba::ShardSet shards = openba::ShardSet::open(dir);
  const openba::TokenizerLayout layout = openba::TokenizerLayout::load(tokenizer_dir);
  shards.require_tokenizer(layout.fingerprint(), "--tokenizer " + tokenizer_dir);
  std::string text;
  for (const auto& line : openba::make_continuation_task(shards, layout, o)) text += line + "\n";
  openba::StagingDir::write_file_atomically(out, text);
  std::printf("openba-tokenize: %lld items of %lld choices -> %s\n", static_cast<long long>(o.items),
              static_cast<long long>(o.choices), out.c_str());
  return 0;
}

int run_compare(const InputFlags& in, const std::string& old_dir, const std::string& new_dir) {
  const openba::Tokenizer old_tokenizer = openba::Tokenizer::load(old_dir);
  const openba::Tokenizer new_tokenizer = openba::Tokenizer::load(new_dir);
  openba::DocumentReader reader(in.inputs, in.options());
  const openba::VocabCheck check = openba::compare_tokenizers(old_tokenizer, new_tokenizer, reader);
  std::printf("%s\n", check.to_json().dump().c_str());
  return check.mismatches == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_tool("openba-tokenize", [&] {
    CLI::App app{"Train OpenBA-style tokenizers, encode corpora into token shards, inspect shards."};
    app.require_subcommand(1);
    int threads = 0;
    app.add_option("--threads", threads,
                   "encoding threads (default: all cores; training always uses SentencePiece's 16 so that "
                   "the model is the same on every machine)");

    auto* train = app.add_subcommand("train", "train a SentencePiece tokenizer with OpenBA's special ids");
    InputFlags train_in;
    train_in.add_to(train);
    int vocab = 8000;
    double coverage = 0.9995;
    uint64_t max_sentences = 5'000'000;
    uint32_t seed = 0;
    std::string train_out;
    bool train_force = false, verbose = false;
    train->add_option("--vocab-size", vocab, "SentencePiece pieces; 100 sentinels and <R>/<S>/<X> come on top")->required();
    train->add_option("--out", train_out, "tokenizer directory to write")->required();
    train->add_option("--character-coverage", coverage, "characters covered by pieces (default 0.9995, CJK-aware)");
    train->add_option("--max-sentences", max_sentences, "lines sampled for training (default 5M)");
    train->add_option("--seed", seed, "sampling seed (default 0)");
    train->add_flag("--force", train_force, "replace OUT if it exists");
    train->add_flag("--verbose", verbose, "show SentencePiece's training log");

    auto* encode = app.add_subcommand("encode", "encode text into token shards");
    InputFlags encode_in;
    encode_in.add_to(encode);
    std::string tokenizer_dir, encode_out;
    uint64_t shard_tokens = 1ull << 30;
    bool encode_force = false, quiet = false;
    encode->add_option("--tokenizer", tokenizer_dir, "tokenizer (or checkpoint) directory")->required();
    encode->add_option("--out", encode_out, "shard directory to write")->required();
    encode->add_option("--shard-tokens", shard_tokens, "tokens per shard file (default 2^30)");
    encode->add_flag("--force", encode_force, "replace OUT if it exists");
    encode->add_flag("--quiet", quiet, "no progress output");

    auto* stats = app.add_subcommand("stats", "documents, tokens, lengths and token frequencies of a shard set");
    std::string stats_dir, stats_tokenizer, freq_out;
    int top = 20;
    bool json = false;
    stats->add_option("shards", stats_dir, "shard directory")->required();
    stats->add_option("--tokenizer", stats_tokenizer, "show pieces (must match the shards' tokenizer)");
    stats->add_option("--top", top, "most frequent tokens to list (default 20)");
    stats->add_option("--freq", freq_out, "write the full frequency table (JSON) here");
    stats->add_flag("--json", json, "print JSON");

    auto* dump = app.add_subcommand("dump", "print documents of a shard set (ids, or text with --tokenizer)");
    std::string dump_dir, dump_tokenizer;
    uint64_t first = 0, count = 10;
    dump->add_option("shards", dump_dir, "shard directory")->required();
    dump->add_option("--first", first, "first document (default 0)");
    dump->add_option("--count", count, "documents to print, 0 = all (default 10)");
    dump->add_option("--tokenizer", dump_tokenizer, "decode to text with this tokenizer");

    auto* compare = app.add_subcommand(
        "compare", "encode documents with an old and a pruned tokenizer; JSON summary; exit 3 when a document made "
                   "only of kept pieces encodes differently");
    InputFlags compare_in;
    compare_in.add_to(compare);
    std::string old_dir, new_dir;
    compare->add_option("--old", old_dir, "the original tokenizer (or checkpoint) directory")->required();
    compare->add_option("--new", new_dir, "the pruned tokenizer (or checkpoint) directory")->required();

    auto* make_task = app.add_subcommand(
        "make-task", "a multiple-choice task from a shard set: a passage's true continuation among spans of other "
                     "documents (openba-eval --task's ids form)");
    std::string task_dir, task_tokenizer, task_out;
    openba::ContinuationTaskOptions task;
    make_task->add_option("shards", task_dir, "shard directory")->required();
    make_task->add_option("--tokenizer", task_tokenizer, "the shards' tokenizer (or checkpoint) directory")->required();
    make_task->add_option("--out", task_out, "task file to write (JSONL)")->required();
    make_task->add_option("--items", task.items, "items (default 200)");
    make_task->add_option("--context-tokens", task.context_tokens, "passage tokens (default 48)");
    make_task->add_option("--choice-tokens", task.choice_tokens, "tokens per choice (default 12)");
    make_task->add_option("--choices", task.choices, "choices per item (default 4)");
    make_task->add_option("--seed", task.seed, "seed (default 0)");

    openba::parse_command_line(app, argc, argv);
    openba::WorkerPool::instance().set_threads(threads);
    if (*make_task) return run_make_task(task_dir, task_tokenizer, task, task_out);
    if (*train) return run_train(train_in, vocab, coverage, max_sentences, seed, train_out, train_force, verbose);
    if (*encode) return run_encode(encode_in, tokenizer_dir, encode_out, shard_tokens, encode_force, quiet);
    if (*stats) return run_stats(stats_dir, stats_tokenizer, top, freq_out, json);
    if (*compare) return run_compare(compare_in, old_dir, new_dir);
    return run_dump(dump_dir, first, count, dump_tokenizer);
  });
}
