// Reading corpora (plain, JSONL, gzip, zstd) and token shards: formats,
// provenance in errors, and the reader's random access and mixing.
#include <catch2/catch.hpp>

#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <map>

#include "tokenizer/document_reader.h"
#include "util/utf8.h"
#include "tokenizer/shard_reader.h"
#include "tokenizer/shard_writer.h"
#include "tokenizer/token_stats.h"
#include "tests/test_util.h"
#include "util/error.h"
#include "util/sha256.h"

using Catch::Matchers::Contains;
using openba::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::vector<openba::Document> read_all(const std::vector<std::string>& paths, openba::ReaderOptions options = {},
                                       openba::DocumentReader* keep = nullptr) {
  openba::DocumentReader reader(paths, options);
  std::vector<openba::Document> docs;
  openba::Document d;
  while (reader.next(d)) docs.push_back(d);
  return docs;
}

std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3));
  return out;
}

const openba::TokenizerInfo kSmallVocab{"fingerprint-a", 1000, 897};

}  // namespace

TEST_CASE("corpus: paragraphs, lines and JSONL, with provenance", "[corpus]") {
  TempDir dir;
  openba::test::write_bytes(dir / "a.txt", "first doc\nsecond line\n\n\n  \nsecond doc\n\n");
  const auto paragraphs = read_all({dir / "a.txt"});
  REQUIRE(paragraphs.size() == 2);
  CHECK(paragraphs[0].text == "first doc\nsecond line");
  CHECK(paragraphs[0].line == 1);
  CHECK(paragraphs[1].text == "second doc");
  CHECK(paragraphs[1].line == 6);

  openba::ReaderOptions lines;
  lines.split = openba::DocumentSplit::kLine;
  openba::DocumentReader line_reader({dir / "a.txt"}, lines);
  std::vector<std::string> texts;
  openba::Document d;
  while (line_reader.next(d)) texts.push_back(d.text);
  CHECK(texts == std::vector<std::string>{"first doc", "second line", "second doc"});
  CHECK(line_reader.skipped_empty() == 4);  // three empty lines and one of spaces
  REQUIRE(line_reader.inputs().size() == 1);
  CHECK(line_reader.inputs()[0].sha256 == openba::sha256_file(dir / "a.txt"));
  CHECK(line_reader.inputs()[0].documents == 3);

  openba::test::write_bytes(dir / "b.jsonl", "{\"text\": \"alpha\", \"id\": 1}\n\n{\"body\": \"x\", \"text\": \"beta\\nbeta\"}\n");
  const auto records = read_all({dir / "b.jsonl"});
  REQUIRE(records.size() == 2);
  CHECK(records[1].text == "beta\nbeta");
  CHECK(records[1].line == 3);
  openba::ReaderOptions body;
  body.field = "body";
  CHECK_THROWS_WITH(read_all({dir / "b.jsonl"}, body), Contains("b.jsonl:1") && Contains("no \"body\" field"));
}

TEST_CASE("corpus: gzip and zstd inputs read like plain ones, multi-member gzip included", "[corpus]") {
  TempDir dir;
  const std::string text = "one\n\ntwo two\n\nthree\n";
  openba::test::write_bytes(dir / "plain.txt", text);
  openba::test::write_bytes(dir / "g.txt.gz", gzip("one\n\ntwo ") + gzip("two\n\nthree\n"));
  openba::test::write_bytes(dir / "z.zst", zstd(text));
  openba::test::write_bytes(dir / "r.jsonl.gz", gzip("{\"text\": \"one\"}\n{\"text\": \"two two\"}\n{\"text\": \"three\"}\n"));
  const auto plain = read_all({dir / "plain.txt"});
  for (const std::string name : {"g.txt.gz", "z.zst", "r.jsonl.gz"}) {
    const auto docs = read_all({dir / name});
    REQUIRE(docs.size() == plain.size());
    for (size_t i = 0; i < docs.size(); ++i) CHECK(docs[i].text == plain[i].text);
  }
  openba::DocumentReader reader({dir / "g.txt.gz", dir / "z.zst"}, {});
  openba::Document d;
  while (reader.next(d)) {
  }
  CHECK(reader.inputs()[0].compression == "gzip");
  CHECK(reader.inputs()[1].compression == "zstd");
  CHECK(reader.inputs()[1].sha256 == openba::sha256_file(dir / "z.zst"));
  CHECK(reader.inputs()[1].bytes == fs::file_size(dir / "z.zst"));
}

TEST_CASE("corpus: bad input is an error with file and line", "[corpus][bad-input]") {
  TempDir dir;
  SECTION("invalid UTF-8") {
    openba::test::write_bytes(dir / "u.txt", "fine\n\nalso fine\nbut \xc3\x28 not\n");
    CHECK_THROWS_WITH(read_all({dir / "u.txt"}), Contains("u.txt:3") && Contains("invalid UTF-8 at byte 14"));
    CHECK(openba::find_invalid_utf8("\xed\xa0\x80") == 0);  // a surrogate
    CHECK(openba::find_invalid_utf8("\xc0\xaf") == 0);      // overlong
    CHECK(openba::find_invalid_utf8("ok \xe4\xb8\xad") == std::string::npos);
  }
  SECTION("JSONL lines that are not objects, or lack the field, or hold a non-string") {
    openba::test::write_bytes(dir / "j.jsonl", "{\"text\": \"ok\"}\n[1, 2]\n");
    CHECK_THROWS_WITH(read_all({dir / "j.jsonl"}), Contains("j.jsonl:2") && Contains("not an object"));
    openba::test::write_bytes(dir / "k.jsonl", "{\"txt\": \"ok\"}\n");
    CHECK_THROWS_WITH(read_all({dir / "k.jsonl"}), Contains("k.jsonl:1") && Contains("no \"text\" field"));
    openba::test::write_bytes(dir / "l.jsonl", "{\"text\": 7}\n");
    CHECK_THROWS_WITH(read_all({dir / "l.jsonl"}), Contains("l.jsonl:1") && Contains("not a string"));
    openba::test::write_bytes(dir / "m.jsonl", "{\"text\": \"unterminated\n");
    CHECK_THROWS_WITH(read_all({dir / "m.jsonl"}), Contains("m.jsonl:1") && Contains("not valid JSON"));
  }
  SECTION("truncated or corrupt compressed data") {
    const std::string whole = gzip(std::string(100000, 'x') + "\n");
    openba::test::write_bytes(dir / "t.gz", whole.substr(0, whole.size() / 2));
    CHECK_THROWS_WITH(read_all({dir / "t.gz"}), Contains("t.gz") && Contains("truncated gzip"));
    std::string corrupt = whole;
    corrupt[20] ^= 0x55;
    corrupt[21] ^= 0x55;
    openba::test::write_bytes(dir / "c.gz", corrupt);
    CHECK_THROWS_WITH(read_all({dir / "c.gz"}), Contains("c.gz") && (Contains("corrupt gzip") || Contains("truncated gzip")));
    const std::string z = zstd(std::string(100000, 'y'));
    openba::test::write_bytes(dir / "t.zst", z.substr(0, z.size() - 5));
    CHECK_THROWS_WITH(read_all({dir / "t.zst"}), Contains("t.zst") && Contains("zstd"));
  }
  SECTION("a document over the size limit") {
    openba::ReaderOptions small;
    small.max_document_bytes = 1000;
    openba::test::write_bytes(dir / "long.txt", "short\n\n" + std::string(5000, 'a') + "\n");
    CHECK_THROWS_WITH(read_all({dir / "long.txt"}, small), Contains("long.txt:3") && Contains("--max-document-bytes"));
    openba::test::write_bytes(dir / "para.txt", "short\n\n" + std::string(600, 'b') + "\n" + std::string(600, 'c') + "\n");
    CHECK_THROWS_WITH(read_all({dir / "para.txt"}, small), Contains("para.txt:3") && Contains("exceeds"));
  }
  SECTION("a missing input") {
    CHECK_THROWS_WITH(read_all({dir / "absent.txt"}), Contains("absent.txt") && Contains("cannot open"));
  }
}

TEST_CASE("shards: write, read back, random access across files", "[shards]") {
  TempDir dir;
  openba::ShardWriterOptions options;
  options.max_shard_tokens = 10;  // forces several files
  openba::ShardWriter writer(dir / "s", kSmallVocab, options);
  std::vector<std::vector<int>> docs;
  for (int d = 0; d < 9; ++d) {
    std::vector<int> ids;
    for (int i = 0; i <= d % 4; ++i) ids.push_back((d * 37 + i * 11) % 1000);
    writer.add(ids.data(), ids.size());
    docs.push_back(ids);
  }
  CHECK_THROWS_WITH(writer.add(docs[0].data(), 0), Contains("empty document"));
  const int bad = 1000;
  CHECK_THROWS_WITH(writer.add(&bad, 1), Contains("outside the vocabulary"));
  writer.commit({});
  const auto shards = openba::ShardSet::open(dir / "s");
  CHECK(shards.token_width() == 2);
  REQUIRE(shards.documents() == 9);
  std::vector<int32_t> all;
  for (uint64_t d = 0; d < 9; ++d) {
    const auto ids = shards.document(d).to_vector();
    CHECK(std::vector<int>(ids.begin(), ids.end()) == docs[d]);
    CHECK(shards.document_length(d) == docs[d].size());
    all.insert(all.end(), ids.begin(), ids.end());
  }
  CHECK(shards.tokens() == all.size());
  for (uint64_t begin : {0ull, 3ull, 9ull, static_cast<unsigned long long>(all.size() - 4)}) {
    std::vector<int32_t> range(4);
    shards.read_tokens(begin, 4, range.data());
    CHECK(range == std::vector<int32_t>(all.begin() + begin, all.begin() + begin + 4));
  }
  CHECK_THROWS_WITH(shards.document(9), Contains("out of range"));
  CHECK_THROWS_WITH(shards.read_tokens(all.size() - 2, 4, all.data()), Contains("out of range"));
  CHECK(fs::exists(dir / "s/tokens-00002.bin"));
  CHECK_THROWS_WITH(shards.require_tokenizer("fingerprint-b", "model /x"),
                    Contains("fingerprint-a") && Contains("fingerprint-b") && Contains("model /x"));
  CHECK_NOTHROW(shards.require_tokenizer("fingerprint-a", "model /x"));
  CHECK_THROWS_WITH(openba::ShardWriter(dir / "s", kSmallVocab, {}), Contains("already exists"));
}

TEST_CASE("shards: vocabularies over 65536 ids use 32-bit tokens", "[shards]") {
  TempDir dir;
  openba::ShardWriter writer(dir / "wide", {"fp", 250203, 250100}, {});
  const std::vector<int> ids = {5, 65536, 250202, 1};
  writer.add(ids.data(), ids.size());
  writer.commit({});
  const auto shards = openba::ShardSet::open(dir / "wide");
  CHECK(shards.token_width() == 4);
  CHECK(shards.document(0).to_vector() == std::vector<int32_t>{5, 65536, 250202, 1});
  CHECK(fs::file_size(dir / "wide/tokens-00000.bin") == 16);
}

TEST_CASE("shards: damaged sets are refused naming the file", "[shards][bad-input]") {
  TempDir dir;
  openba::ShardWriter writer(dir / "s", kSmallVocab, {});
  const std::vector<int> ids = {1, 2, 3, 4, 5};
  writer.add(ids.data(), 2);
  writer.add(ids.data() + 2, 3);
  writer.commit({});
  fs::copy(dir / "s", dir / "t", fs::copy_options::recursive);
  fs::resize_file(dir / "t/tokens-00000.bin", 6);
  CHECK_THROWS_WITH(openba::ShardSet::open(dir / "t"), Contains("tokens-00000.bin") && Contains("manifest says 5 tokens"));
  fs::copy(dir / "s", dir / "u", fs::copy_options::recursive);
  std::string index = openba::test::read_bytes(dir / "u/index-00000.bin");
  index[8] = 7;  // first document ends past the second
  openba::test::write_bytes(dir / "u/index-00000.bin", index);
  CHECK_THROWS_WITH(openba::ShardSet::open(dir / "u"), Contains("index-00000.bin"));
  CHECK_THROWS_WITH(openba::ShardSet::open(dir / "nothing"), Contains("no manifest.json"));
  fs::copy(dir / "s", dir / "v", fs::copy_options::recursive);
  openba::test::write_bytes(dir / "v/manifest.json", "{\"format\": \"openba-token-shards\"");
  CHECK_THROWS_WITH(openba::ShardSet::open(dir / "v"), Contains("manifest.json") && Contains("malformed JSON"));
}

TEST_CASE("shards: a weighted mixture is deterministic and follows its weights", "[shards]") {
  TempDir dir;
  std::vector<openba::ShardMixture::Source> sources;
  for (int s = 0; s < 2; ++s) {
    const std::string path = dir / ("m" + std::to_string(s));
    openba::ShardWriter writer(path, kSmallVocab, {});
    for (int d = 0; d < 50; ++d) {
      const int id = s * 100 + d;
      writer.add(&id, 1);
    }
    writer.commit({});
    sources.push_back({std::make_shared<openba::ShardSet>(openba::ShardSet::open(path)), s == 0 ? 3.0 : 1.0});
  }
  openba::ShardMixture mixture(sources);
  std::map<size_t, int> by_source;
  std::map<uint64_t, int> by_document;
  for (uint64_t i = 0; i < 20000; ++i) {
    const auto draw = mixture.draw(42, i);
    const auto again = mixture.draw(42, i);
    CHECK((draw.source == again.source && draw.document == again.document));
    by_source[draw.source]++;
    if (draw.source == 0) by_document[draw.document]++;
  }
  CHECK(by_source[0] == Approx(15000).margin(400));  // 3:1
  CHECK(by_document.size() == 50);                    // every document drawn
  CHECK(mixture.draw(43, 0).document != mixture.draw(42, 0).document + 1000);  // a seed changes the stream
  CHECK_THROWS_WITH(openba::ShardMixture({{sources[0].shards, 0.0}}), Contains("weights must be positive"));
}

TEST_CASE("shards: statistics match a hand count", "[shards]") {
  TempDir dir;
  openba::ShardWriter writer(dir / "s", kSmallVocab, {});
  const std::vector<std::vector<int>> docs = {{5, 5, 7}, {7}, {9, 5, 7, 7, 7}, {11, 11}};
  for (const auto& d : docs) writer.add(d.data(), d.size());
  writer.commit({});
  const auto stats = openba::compute_token_stats(openba::ShardSet::open(dir / "s"));
  CHECK(stats.documents == 4);
  CHECK(stats.tokens == 11);
  CHECK(stats.counts[5] == 3);
  CHECK(stats.counts[7] == 5);
  CHECK(stats.counts[11] == 2);
  CHECK(stats.counts[9] == 1);
  CHECK(stats.lengths == std::vector<uint32_t>{3, 1, 5, 2});
  CHECK(stats.length_percentile(50) == 2);   // nearest rank of {1, 2, 3, 5}
  CHECK(stats.length_percentile(100) == 5);
  CHECK(stats.length_percentile(10) == 1);
}

TEST_CASE("utf8: repair replaces each invalid byte with U+FFFD", "[corpus]") {
  CHECK(openba::repair_utf8("ok") == "ok");
  CHECK(openba::repair_utf8("a\xe4\xb8") == "a\xef\xbf\xbd\xef\xbf\xbd");  // a character cut short
  CHECK(openba::repair_utf8("\xff" "b\xe4\xb8\xad") == "\xef\xbf\xbd" "b\xe4\xb8\xad");
}
