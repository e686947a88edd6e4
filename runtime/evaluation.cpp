#include "runtime/evaluation.h"

#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "runtime/jsonl_input.h"
#include "util/error.h"

namespace openba {

Seq2SeqBatch collate(const std::vector<const Example*>& examples, const ModelConfig& config,
                     const torch::Device& device) {
  if (examples.empty()) throw Error("collate: empty batch");
  size_t enc_len = 0, dec_len = 0;
  for (const Example* e : examples) {
    enc_len = std::max(enc_len, e->input_ids.size());
    dec_len = std::max(dec_len, e->labels.size());
  }
  const int64_t b = static_cast<int64_t>(examples.size());
  auto ids = torch::full({b, static_cast<int64_t>(enc_len)}, config.pad_token_id, torch::kLong);
  auto mask = torch::zeros({b, static_cast<int64_t>(enc_len)}, torch::kLong);
  auto labels = torch::full({b, static_cast<int64_t>(dec_len)}, -100, torch::kLong);
  auto dec_mask = torch::zeros({b, static_cast<int64_t>(dec_len)}, torch::kLong);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  auto labels_a = labels.accessor<int64_t, 2>();
  auto dec_mask_a = dec_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    const Example& e = *examples[i];
    for (size_t j = 0; j < e.input_ids.size(); ++j) {
      ids_a[i][j] = e.input_ids[j];
      mask_a[i][j] = 1;
    }
    for (size_t j = 0; j < e.labels.size(); ++j) {
      labels_a[i][j] = e.labels[j];
      dec_mask_a[i][j] = 1;
    }
  }
  Seq2SeqBatch batch;
  // To CUDA from pinned memory without waiting: the copy overlaps the work
  // already queued (the tensors stay alive until it is done: the caching
  // host allocator records the stream).
  auto to_device = [&](const torch::Tensor& t) {
    return device.is_cuda() ? t.pin_memory().to(device, /*non_blocking=*/true) : t.to(device);
  };
  batch.input_ids = to_device(ids);
  batch.attention_mask = to_device(mask);
  batch.labels = to_device(labels);
  bool own_decoder_inputs = false;
  for (const Example* e : examples) own_decoder_inputs = own_decoder_inputs || !e->decoder_input_ids.empty();
  if (own_decoder_inputs) {
    auto dec_in = shift_right(labels, config.decoder_start_token_id, config.pad_token_id);
    auto dec_in_a = dec_in.accessor<int64_t, 2>();
    for (int64_t i = 0; i < b; ++i) {
      const Example& e = *examples[i];
      if (e.decoder_input_ids.empty()) continue;
      if (e.decoder_input_ids.size() != e.labels.size()) {
        throw Error("collate: decoder_input_ids (" + std::to_string(e.decoder_input_ids.size()) + ") and labels (" +
                    std::to_string(e.labels.size()) + ") differ in length");
      }
      for (size_t j = 0; j < e.decoder_input_ids.size(); ++j) dec_in_a[i][j] = e.decoder_input_ids[j];
    }
    batch.decoder_input_ids = to_device(dec_in);
  } else {
    batch.decoder_input_ids =
        shift_right(batch.labels, config.decoder_start_token_id, config.pad_token_id);
  }
  batch.decoder_attention_mask = to_device(dec_mask);
  batch.inputs_padded = batch.targets_padded = false;
  for (const Example* e : examples) {
    if (e->input_ids.size() < enc_len) batch.inputs_padded = true;
    if (e->labels.size() < dec_len) batch.targets_padded = true;
  }
  return batch;
}

std::vector<ExampleLoss> example_losses(Seq2SeqModelImpl& model, const Seq2SeqBatch& batch) {
  torch::NoGradGuard no_grad;
  auto enc = model.encode(batch.input_ids, batch.encoder_mask());
  auto dec = model.decode(batch.decoder_input_ids, batch.decoder_mask(), enc, batch.encoder_mask());
  return losses_from_decoder_states(dec, batch.labels, model.config.vocab_size,
                                    [&](const torch::Tensor& states) { return model.project(states); });
}

std::vector<ExampleLoss> losses_from_decoder_states(
    const torch::Tensor& dec, const torch::Tensor& batch_labels, int64_t vocab,
    const std::function<torch::Tensor(const torch::Tensor&)>& project) {
  torch::NoGradGuard no_grad;
  const int64_t b = dec.size(0), t = dec.size(1), d = dec.size(2);
  auto labels = batch_labels.reshape({b * t});
  auto counted = (labels != -100).nonzero().squeeze(1);  // flat positions with a target
  auto states = dec.reshape({b * t, d}).index_select(0, counted);
  auto targets = labels.index_select(0, counted);
  auto nll = torch::empty({counted.size(0)}, torch::TensorOptions().dtype(torch::kFloat).device(dec.device()));
  // Rows per chunk so one chunk's logits stay around 64M floats.
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 26) / vocab);
  for (int64_t start = 0; start < counted.size(0); start += rows) {
    const int64_t n = std::min(rows, counted.size(0) - start);
    auto logits = project(states.narrow(0, start, n));
    nll.narrow(0, start, n).copy_(torch::cross_entropy_loss(
        logits, targets.narrow(0, start, n), {}, at::Reduction::None));
  }
  auto example_of = torch::div(counted, t, "floor");
  auto sums = torch::zeros({b}, torch::TensorOptions().dtype(torch::kDouble).device(dec.device()));
  sums.index_add_(0, example_of, nll.to(torch::kDouble));
  auto counts = torch::zeros({b}, torch::TensorOptions().dtype(torch::kLong).device(dec.device()));
  counts.index_add_(0, example_of, torch::ones_like(example_of));
  sums = sums.cpu();
  counts = counts.cpu();
  std::vector<ExampleLoss> out(b);
  for (int64_t i = 0; i < b; ++i) {
    out[i].nll_sum = sums[i].item<double>();
    out[i].tokens = counts[i].item<int64_t>();
  }
  return out;
}

std::vector<std::vector<size_t>> plan_batches(const std::vector<Example>& examples,
                                              size_t max_batch, size_t max_tokens) {
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  // Longest first (stable), so similar lengths share a batch.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = examples[a];
    const auto& y = examples[b];
    if (x.input_ids.size() != y.input_ids.size()) return x.input_ids.size() > y.input_ids.size();
    return x.labels.size() > y.labels.size();
  });
  std::vector<std::vector<size_t>> batches;
  size_t enc = 0, dec = 0;
  for (size_t index : order) {
    const size_t e = examples[index].input_ids.size();
    const size_t l = examples[index].labels.size();
    if (!batches.empty()) {
      auto& cur = batches.back();
      const size_t new_enc = std::max(enc, e), new_dec = std::max(dec, l);
      if (cur.size() < max_batch && (cur.size() + 1) * (new_enc + new_dec) <= max_tokens) {
        cur.push_back(index);
        enc = new_enc;
        dec = new_dec;
        continue;
      }
    }
    batches.push_back({index});
    enc = e;
    dec = l;
  }
  return batches;
}

Example parse_example_json(const std::string& line, int64_t vocab_size, const std::string& where) {
  const nlohmann::json root = parse_jsonl_object(line, where, "a JSON object with input_ids and labels");
  Example ex;
  ex.input_ids = read_token_ids(required_field(root, "input_ids", where), "input_ids", vocab_size, false, where);
  ex.labels = read_token_ids(required_field(root, "labels", where), "labels", vocab_size, true, where);
  return ex;
}

}  // namespace openba
