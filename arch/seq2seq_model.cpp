#include "arch/seq2seq_model.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "arch/block_checkpoint.h"
#include "util/error.h"

namespace openba {

torch::Tensor shift_right(const torch::Tensor& labels, int64_t decoder_start_token_id,
                          int64_t pad_token_id) {
  auto shifted = torch::empty_like(labels);
  shifted.select(1, 0).fill_(decoder_start_token_id);
  if (labels.size(1) > 1) {
    shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  }
  return shifted.masked_fill_(shifted == -100, pad_token_id);
}

int64_t DecoderCache::batch() const { return layers.empty() ? 0 : layers.front().self_k.size(0); }

void DecoderCache::select_rows(const torch::Tensor& index, bool cross_too) {
  auto keep = [&](torch::Tensor& t) { t = t.index_select(0, index); };
  for (LayerKv& kv : layers) {
    // Only the filled rows: the capacity's tail is copied never.
    for (torch::Tensor* cache : {&kv.self_k, &kv.self_v}) {
      auto selected = torch::empty({index.size(0), cache->size(1), cache->size(2)}, cache->options());
      if (kv.length > 0) selected.narrow(1, 0, kv.length).copy_(cache->narrow(1, 0, kv.length).index_select(0, index));
      *cache = selected;
    }
    if (cross_too) {
      keep(kv.cross_k);
      keep(kv.cross_v);
    }
  }
  if (cross_too && memory_mask.key_hidden.defined()) keep(memory_mask.key_hidden);
}

LayerKv empty_layer_kv(int64_t capacity, torch::Tensor cross_k, torch::Tensor cross_v) {
  LayerKv kv;
  const int64_t batch = cross_k.size(0), width = cross_k.size(2);
  kv.self_k = torch::empty({batch, capacity, width}, cross_k.options());
  kv.self_v = torch::empty({batch, capacity, width}, cross_v.options());
  kv.cross_k = std::move(cross_k);
  kv.cross_v = std::move(cross_v);
  return kv;
}

DecoderCache make_decoder_cache(int64_t layers, const torch::Tensor& encoder_attention_mask, int64_t capacity,
                                const std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)>& cross_kv) {
  DecoderCache cache;
  cache.capacity = capacity;
  cache.memory_mask = key_padding_mask(encoder_attention_mask);
  for (int64_t i = 0; i < layers; ++i) {
    auto [k, v] = cross_kv(i);
    cache.layers.push_back(empty_layer_kv(capacity, std::move(k), std::move(v)));
  }
  return cache;
}

torch::Tensor run_cached_decoder(const OpBackend& ops, torch::Tensor x, StackInputs& in, DecoderCache& cache,
                                 const std::function<Seq2SeqBlockImpl&(int64_t)>& block) {
  const int64_t t = x.size(1);
  check_decode_step(cache, t);
  in.memory_mask = cache.memory_mask;
  for (size_t i = 0; i < cache.layers.size(); ++i) {
    in.kv = &cache.layers[i];
    x = block(static_cast<int64_t>(i)).forward(ops, x, in);
  }
  in.kv = nullptr;
  cache.length += t;
  return x;
}

void check_decode_step(const DecoderCache& cache, int64_t t) {
  if (t < 1) throw Error("decode_step: no positions to decode");
  if (t > 1 && cache.length > 0) {
    throw Error("decode_step: " + std::to_string(t) + " positions after " + std::to_string(cache.length) +
                " cached ones (several positions only as the prefix of an empty cache)");
  }
  if (cache.length + t > cache.capacity) {
    throw Error("decode_step: " + std::to_string(cache.length) + " + " + std::to_string(t) +
                " positions exceed the cache's capacity " + std::to_string(cache.capacity));
  }
}

std::pair<torch::Tensor, torch::Tensor> append_self_kv(LayerKv& kv, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t t = k.size(1);
  if (kv.length + t > kv.self_k.size(1)) {
    throw Error("decoder cache full: " + std::to_string(kv.length) + " + " + std::to_string(t) + " positions exceed its capacity " +
                std::to_string(kv.self_k.size(1)));
  }
  kv.self_k.narrow(1, kv.length, t).copy_(k);
  kv.self_v.narrow(1, kv.length, t).copy_(v);
  kv.length += t;
  return {kv.self_k.narrow(1, 0, kv.length), kv.self_v.narrow(1, 0, kv.length)};
}

torch::Tensor Seq2SeqModelImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return encode(select_op_backend(embedding_weight()), input_ids, attention_mask);
}

torch::Tensor Seq2SeqModelImpl::decode(const torch::Tensor& decoder_input_ids,
                                       const torch::Tensor& decoder_attention_mask,
                                       const torch::Tensor& encoder_states,
                                       const torch::Tensor& encoder_attention_mask) {
  return decode(select_op_backend(embedding_weight()), decoder_input_ids, decoder_attention_mask, encoder_states,
                encoder_attention_mask);
}

torch::Tensor Seq2SeqModelImpl::project(const torch::Tensor& decoder_states) {
  return project(select_op_backend(decoder_states), decoder_states);
}

torch::Tensor Seq2SeqModelImpl::forward(const Seq2SeqBatch& batch) {
  const OpBackend& ops = select_op_backend(embedding_weight());
  auto enc = encode(ops, batch.input_ids, batch.encoder_mask());
  auto dec = decode(ops, batch.decoder_input_ids, batch.decoder_mask(), enc, batch.encoder_mask());
  return project(ops, dec);
}

torch::Tensor Seq2SeqModelImpl::run_block(const OpBackend& ops, Seq2SeqBlockImpl& block, const torch::Tensor& x,
                                          const StackInputs& in) {
  if (activation_checkpointing && is_training() && torch::GradMode::is_enabled()) {
    return checkpointed_block_forward(ops, block, x, in);
  }
  return block.forward(ops, x, in);
}

torch::Tensor project_to_vocabulary(const OpBackend& ops, const ModelConfig& config, const torch::Tensor& states,
                                    const torch::Tensor& weight, const torch::Tensor& bias) {
  auto h = states;
  if (config.tie_word_embeddings) h = h * std::pow(static_cast<double>(config.d_model), -0.5);
  return ops.linear(h, weight, bias).to(torch::kFloat);
}

void set_activation_checkpointing(Seq2SeqModelImpl& model, bool enabled) { model.set_activation_checkpointing(enabled); }

void set_dropout(Seq2SeqModelImpl& model, double probability) { model.set_dropout(probability); }

void fill_parameters(Seq2SeqModelImpl& model, const std::function<torch::Tensor(const TensorSpec&)>& source) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(true);
  for (const TensorSpec& spec : openba_tensor_specs(model.config)) {
    if (spec.name == kLmHeadWeightName && model.lm_head_tied()) continue;
    torch::Tensor* param = params.find(spec.name);
    if (!param) throw Error("model has no parameter '" + spec.name + "'");
    param->copy_(source(spec));
  }
}

std::vector<std::pair<std::string, torch::Tensor>> unique_named_parameters(Seq2SeqModelImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::set<const void*> seen;
  for (const auto& item : model.named_parameters(true)) {
    if (seen.insert(item.value().unsafeGetTensorImpl()).second) out.emplace_back(item.key(), item.value());
  }
  return out;
}

}  // namespace openba
