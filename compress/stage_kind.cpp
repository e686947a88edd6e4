#include "compress/stage_kind.h"

#include "compress/layer_stage.h"
#include "compress/width_units.h"
#include "tokenizer/layout.h"
#include "util/error.h"

namespace openba {

std::optional<StageKind> parse_stage_kind(const std::string& text) {
  if (text == "layer") return StageKind::kLayer;
  if (text == "neuron" || text == "width") return StageKind::kWidth;
  if (text == "vocab") return StageKind::kVocab;
  return std::nullopt;
}

const char* stage_kind_name(StageKind kind) {
  switch (kind) {
    case StageKind::kLayer: return "layer";
    case StageKind::kWidth: return "neuron";
    case StageKind::kVocab: return "vocab";
  }
  return "?";
}

const std::vector<std::string>& layer_score_methods() {
  static const std::vector<std::string> methods = {"angular", "loss"};
  return methods;
}

const std::vector<std::string>& width_score_methods() {
  static const std::vector<std::string> methods = {"activation", "magnitude", "taylor", "random"};
  return methods;
}

bool is_one_of(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& n : names) {
    if (n == name) return true;
  }
  return false;
}

LayerShape layer_shape_after(const ModelConfig& c, const CompressOptions& o, const ShapeContext& ctx) {
  LayerShape out;
  out.config = c;
  auto stack = [&](int s, const std::string& drop, int64_t keep, int64_t& layers) {
    const char* name = s ? "decoder" : "encoder";
    const std::string drop_key = ctx.opt(std::string("drop-") + name + "-layers");
    const std::string keep_key = ctx.opt(std::string("keep-") + name + "-layers");
    if (!drop.empty() && keep != kUnset) throw Error(drop_key + " and " + keep_key + " cannot both be given");
    if (!drop.empty()) {
      out.drop[s] = parse_layer_list(drop, layers, drop_key);
      layers -= static_cast<int64_t>(out.drop[s].size());
    }
    if (keep != kUnset) {
      if (keep <= 0 || keep > layers) {
        throw Error(keep_key + " " + std::to_string(keep) + ": must be in [1, " + std::to_string(layers) + "] (" +
                    ctx.model + " has " + std::to_string(layers) + " " + name + " layers)");
      }
      layers = keep;
      out.scored = true;
    }
  };
  stack(0, o.drop_encoder_layers, o.keep_encoder_layers, out.config.encoder_layers);
  stack(1, o.drop_decoder_layers, o.keep_decoder_layers, out.config.decoder_layers);
  if (!out.scored && out.drop[0].empty() && out.drop[1].empty()) {
    throw Error("a layer stage needs " + ctx.opt("drop-encoder-layers") + "/" + ctx.opt("drop-decoder-layers") +
                " or " + ctx.opt("keep-encoder-layers") + "/" + ctx.opt("keep-decoder-layers"));
  }
  return out;
}

WidthShape width_shape_after(const ModelConfig& c, const CompressOptions& o, const ShapeContext& ctx) {
  if (o.ffn == kUnset && o.heads == kUnset && o.hidden == kUnset) {
    throw Error("a neuron stage needs " + ctx.opt("ffn") + ", " + ctx.opt("heads") + " and/or " + ctx.opt("hidden"));
  }
  if (o.round_to < 1) throw Error(ctx.opt("round-to") + " must be >= 1 (got " + std::to_string(o.round_to) + ")");
  auto target = [&](const char* key, int64_t value, int64_t current, const char* what) {
    if (value == kUnset) return current;
    const std::string opt = ctx.opt(key);
    if (value <= 0) throw Error(opt + " " + std::to_string(value) + ": must be positive");
    if (value > current) {
      throw Error(opt + " " + std::to_string(value) + " is larger than the " + std::to_string(current) + " " + what +
                  " of " + ctx.model + " (pruning only removes)");
    }
    return value;
  };
  WidthShape out;
  out.ffn = round_width(target("ffn", o.ffn, c.ffn_hidden, "FFN neurons per layer"), o.round_to, c.ffn_hidden);
  out.hidden = round_width(target("hidden", o.hidden, c.d_model, "hidden channels"), o.round_to, c.d_model);
  out.heads = target("heads", o.heads, c.num_heads, "attention heads per layer");
  out.config = c;
  out.config.ffn_hidden = out.ffn;
  out.config.d_model = out.hidden;
  out.config.num_heads = out.heads;
  return out;
}

ModelConfig vocab_shape_after(const ModelConfig& c, const CompressOptions& o, int64_t pieces, int64_t required,
                              const ShapeContext& ctx) {
  const std::string opt = ctx.opt("vocab");
  if (o.vocab == kUnset) throw Error("a vocab stage needs " + opt + " N (SentencePiece pieces to keep)");
  if (o.vocab <= 0) throw Error(opt + " " + std::to_string(o.vocab) + ": must be positive");
  if (o.vocab > pieces) {
    throw Error(opt + " " + std::to_string(o.vocab) + " is larger than the tokenizer's " + std::to_string(pieces) +
                " pieces (pruning only removes)");
  }
  if (o.vocab < required) {
    throw Error(opt + " " + std::to_string(o.vocab) + " is smaller than the " + std::to_string(required) +
                " pieces that must be kept (control, <unk>, byte fallback and user-defined pieces)");
  }
  if (o.min_freq < 0) throw Error(ctx.opt("min-freq") + " must not be negative");
  ModelConfig out = c;
  // T5 tokenizers carry no mode tokens: 100 sentinels on top of the pieces.
  out.vocab_size = TokenizerLayout::padded_rows_for_pieces(o.vocab, c.family == ModelFamily::kOpenBA);
  return out;
}

}  // namespace openba
