// The tokenizer library: id layout, training, encoding/decoding, and
// loading tokenizer directories the way OpenBA's released one is laid out.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "tokenizer/document_reader.h"
#include "tokenizer/layout.h"
#include "tokenizer/spiece_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/trainer.h"
#include "tests/test_util.h"
#include "util/error.h"
#include "util/sha256.h"

using Catch::Matchers::Contains;
using openba::test::TempDir;
namespace fs = std::filesystem;

namespace {

// A small bilingual corpus: enough for a few hundred pieces.
std::string small_corpus() {
  static const char* words[] = {"the", "light", "water", "earth", "heaven", "said", "and", "was", "good",
                                "day", "night", "God", "created", "in", "beginning", "of", "upon", "face"};
  static const char* hanzi[] = {"天", "地", "光", "水", "日", "夜", "善", "言", "初", "造"};
  std::string text;
  for (int line = 0; line < 600; ++line) {
    for (int w = 0; w < 9; ++w) text += std::string(words[(line * 7 + w * 3) % 18]) + (w < 8 ? " " : ".\n");
    for (int c = 0; c < 6; ++c) text += hanzi[(line + c * 3) % 10];
    text += "。\n\n";
  }
  return text;
}

// Trained once and shared by the tests below.
const openba::Tokenizer& trained() {
  static const openba::Tokenizer tokenizer = [] {
    TempDir dir;
    const std::string corpus = dir / "corpus.txt";
    openba::test::write_bytes(corpus, small_corpus());
    openba::DocumentReader reader({corpus}, {});
    openba::TrainOptions options;
    options.vocab_size = 340;  // 256 byte pieces + 3 specials + the characters come first
    options.character_coverage = 1.0;
    return openba::train_tokenizer(reader, options, nullptr);
  }();
  return tokenizer;
}

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 examples", "[tokenizer]") {
  CHECK(openba::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(openba::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(openba::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  openba::Sha256 million;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(a);
  CHECK(million.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("tokenizer: OpenBA's id layout over a trained model", "[tokenizer]") {
  const auto& t = trained();
  const int p = t.piece_count();
  CHECK(p == 340);
  CHECK(t.pad_id() == 0);
  CHECK(t.eos_id() == 1);
  CHECK(t.unk_id() == 2);
  CHECK(t.id_to_piece(0) == "<pad>");
  CHECK(t.id_to_piece(1) == "</s>");
  CHECK(t.id_to_piece(2) == "<unk>");
  CHECK(t.sentinel_id(0) == p + 99);  // counting down from the top of the sentinel range
  CHECK(t.sentinel_id(99) == p);
  CHECK(t.mode_id('R') == p + 100);
  CHECK(t.mode_id('S') == p + 101);
  CHECK(t.mode_id('X') == p + 102);
  CHECK(t.vocab_size() == p + 103);
  CHECK(t.padded_vocab_rows() == 512);
  CHECK(t.id_to_piece(t.sentinel_id(7)) == "<extra_id_7>");
  CHECK_THROWS_WITH(t.sentinel_id(100), Contains("extra_id_100"));
  // Byte fallback pieces exist, so no character is unknown.
  CHECK(t.id_to_piece(3) == "<0x00>");
}

TEST_CASE("tokenizer: encode appends </s>; decode names or skips specials", "[tokenizer]") {
  const auto& t = trained();
  const auto ids = t.encode("the light was good");
  REQUIRE(ids.size() > 1);
  CHECK(ids.back() == t.eos_id());
  CHECK(t.decode(ids, true) == "the light was good");
  CHECK(t.decode(ids) == "the light was good</s>");
  std::vector<int> with_sentinel = t.encode("the light", false);
  with_sentinel.push_back(t.sentinel_id(0));
  with_sentinel.push_back(t.mode_id('S'));
  CHECK(t.decode(with_sentinel) == "the light<extra_id_0><S>");
  CHECK(t.decode(with_sentinel, true) == "the light");
  // Characters outside the pieces fall back to bytes and come back intact.
  const std::string rare = "zebra ☃ 龍";
  CHECK(t.decode(t.encode(rare, false)) == rare);
  // The piece-table decoder (for processes without SentencePiece) agrees.
  for (const std::string& text : {std::string("the light was good"), std::string("天地 光水"), rare}) {
    const auto pieces = t.encode(text, false);
    CHECK(t.decode_pieces(pieces) == t.decode(pieces));
  }
  CHECK_THROWS_WITH(t.decode({0, t.vocab_size()}), Contains("outside the vocabulary"));
}

TEST_CASE("tokenizer: a released-style directory (spiece.model + added_tokens.json) loads with the same ids", "[tokenizer]") {
  const auto& t = trained();
  const int p = t.piece_count();
  TempDir dir;
  // As OpenBA ships it: the SentencePiece model and the three mode tokens only.
  openba::test::write_bytes(dir / "spiece.model", t.model_proto());
  openba::test::write_bytes(dir / "added_tokens.json",
                            "{\"<R>\": " + std::to_string(p + 100) + ", \"<S>\": " + std::to_string(p + 101) +
                                ", \"<X>\": " + std::to_string(p + 102) + "}");
  const auto loaded = openba::TokenizerLayout::load(dir.path());
  CHECK(loaded.vocab_size() == t.vocab_size());
  CHECK(loaded.sentinel_id(0) == t.sentinel_id(0));
  CHECK(loaded.mode_id('X') == p + 102);
  CHECK(loaded.fingerprint() == t.fingerprint());
  // Our own written directory round-trips to the same fingerprint.
  TempDir ours;
  t.write_files(ours.path());
  CHECK(openba::Tokenizer::load(ours.path()).fingerprint() == t.fingerprint());
  CHECK(openba::TokenizerLayout::load(ours.path()).fingerprint() == t.fingerprint());
}

TEST_CASE("tokenizer: directories that contradict the layout are refused", "[tokenizer][bad-input]") {
  const auto& t = trained();
  const int p = t.piece_count();
  TempDir dir;
  CHECK_THROWS_WITH(openba::TokenizerLayout::load(dir.path()), Contains("no spiece.model"));
  openba::test::write_bytes(dir / "spiece.model", t.model_proto());
  openba::test::write_bytes(dir / "added_tokens.json", "{\"<R>\": 5, \"<S>\": 6, \"<X>\": 7}");
  CHECK_THROWS_WITH(openba::TokenizerLayout::load(dir.path()), Contains("added_tokens.json") && Contains("'<R>' has id 5"));
  openba::test::write_bytes(dir / "added_tokens.json", "{\"<extra_id_0>\": " + std::to_string(p) + "}");
  CHECK_THROWS_WITH(openba::TokenizerLayout::load(dir.path()), Contains("<extra_id_0> has id"));
  openba::test::write_bytes(dir / "added_tokens.json", "{\"<R>\": ");
  CHECK_THROWS_WITH(openba::TokenizerLayout::load(dir.path()), Contains("added_tokens.json") && Contains("malformed JSON"));
  openba::test::write_bytes(dir / "added_tokens.json",
                            "{\"<R>\": " + std::to_string(p + 100) + ", \"<S>\": " + std::to_string(p + 102) +
                                ", \"<X>\": " + std::to_string(p + 103) + "}");
  CHECK_THROWS_WITH(openba::TokenizerLayout::load(dir.path()), Contains("no token has id " + std::to_string(p + 101)));
  fs::remove(dir / "added_tokens.json");
  openba::test::write_bytes(dir / "spiece.model", "not a model at all");
  CHECK_THROWS_WITH(openba::TokenizerLayout::load(dir.path()), Contains("spiece.model") && Contains("not a valid SentencePiece model"));
}

TEST_CASE("spiece model reader agrees with SentencePiece on every piece", "[tokenizer]") {
  const auto& t = trained();
  const auto model = openba::parse_spiece_model(t.model_proto(), "trained");
  REQUIRE(static_cast<int>(model.pieces.size()) == t.piece_count());
  CHECK(model.pad_id == 0);
  CHECK(model.eos_id == 1);
  CHECK(model.unk_id == 2);
  CHECK(model.bos_id == -1);
  CHECK(model.pieces[1].type == openba::PieceType::kControl);
  CHECK(model.pieces[2].type == openba::PieceType::kUnknown);
  CHECK(model.pieces[3].type == openba::PieceType::kByte);
  for (int id = 0; id < t.piece_count(); ++id) {
    // A single ordinary piece decodes to its text with U+2581 as a space
    // (lone byte pieces are not valid UTF-8 on their own: skipped here).
    if (!t.is_special(id) && model.pieces[id].type != openba::PieceType::kByte) {
      CHECK(t.decode_pieces({id}) == t.decode({id}));
    }
  }
  CHECK_THROWS_WITH(openba::parse_spiece_model(t.model_proto().substr(0, t.model_proto().size() / 2), "half"),
                    Contains("half"));
}
