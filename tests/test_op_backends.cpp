// The op table (ops/op_backend.h): one forward, four backends. Each
// backend's forward agrees with the others; the backend is picked once per
// forward by the documented rule; a BlockProbe sees the block's own
// activations; the training forward issues each projection GEMM once.
#include "tests/torch_test.h"

#include <ATen/record_function.h>

#include <map>
#include <string>

#include "ops/compute_path.h"
#include "arch/openba/init.h"
#include "ops/op_backend.h"
#include "arch/openba/openba_model.h"
#include "tests/model_test_util.h"
#include "tests/test_util.h"

namespace {

using openba::OpBackendId;

torch::Tensor logits_on(openba::OpenBAModelImpl& model, const openba::Seq2SeqBatch& b, const openba::OpBackend& ops) {
  auto enc = model.encode(ops, b.input_ids, b.encoder_mask());
  auto dec = model.decode(ops, b.decoder_input_ids, b.decoder_mask(), enc, b.encoder_mask());
  return model.project(ops, dec);
}

// Counts the RECORD_FUNCTION scopes of this thread by name while alive.
class ScopeCounter {
 public:
  ScopeCounter() {
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(
            [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
              ++counts()[fn.name()];
              return nullptr;
            })
            .needsInputs(false));
  }
  ~ScopeCounter() { at::removeCallback(handle_); }
  static std::map<std::string, int>& counts() {
    static thread_local std::map<std::string, int> c;
    return c;
  }

 private:
  at::CallbackHandle handle_;
};

}  // namespace

TEST_CASE("op backends: every backend gives the same forward", "[model][backends]") {
  openba::test::PoolThreads pool(2);
  const auto c = openba::test::small_config(2, 2, 32, 4, 8, 48, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 7, openba::InitScheme::kHf);
  model->eval();
  const auto batch = openba::test::padded_batch(c.vocab_size);
  torch::NoGradGuard no_grad;
  const auto reference = logits_on(*model, batch, openba::op_backend(OpBackendId::kAtenMath));
  for (auto id : {OpBackendId::kCpuInference, OpBackendId::kCpuTraining, OpBackendId::kAten}) {
    const auto& ops = openba::op_backend(id);
    INFO(ops.name());
    const auto logits = logits_on(*model, batch, ops);
    CHECK((logits - reference).abs().max().item<double>() < 1e-4);
  }
  // forward() without a backend takes the documented one: the fused kernels here.
  CHECK(torch::equal(model->forward(batch), logits_on(*model, batch, openba::op_backend(OpBackendId::kCpuInference))));
}

TEST_CASE("op backends: the selection rule", "[model][backends]") {
  const auto f32 = torch::zeros({2});
  {
    torch::NoGradGuard no_grad;
    CHECK(openba::select_op_backend(f32).id() == OpBackendId::kCpuInference);
    CHECK(openba::select_op_backend(f32.to(torch::kDouble)).id() == OpBackendId::kAten);
  }
  CHECK(openba::select_op_backend(f32).id() == OpBackendId::kCpuTraining);
  CHECK(openba::select_op_backend(f32.to(torch::kBFloat16)).id() == OpBackendId::kAten);
  openba::CudaStylePath forced;
  CHECK(openba::select_op_backend(f32).id() == OpBackendId::kAten);
}

TEST_CASE("op backends: a probe sees the block's own activations", "[model][backends]") {
  const auto c = openba::test::small_config(1, 1, 16, 2, 8, 24, 40);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 3);
  model->eval();
  torch::NoGradGuard no_grad;
  struct Recorder : openba::BlockProbe {
    std::vector<torch::Tensor> norms, contexts;
    torch::Tensor ffn;
    void norm_output(const torch::Tensor& t) override { norms.push_back(t.clone()); }
    void attention_context(bool, const torch::Tensor& t) override { contexts.push_back(t.clone()); }
    void ffn_activation(const torch::Tensor& t) override { ffn = t.clone(); }
  } probe;
  auto& block = *model->decoder->layer(0);
  const auto x = torch::randn({2, 5, 16});
  const auto memory = torch::randn({2, 4, 16});
  const auto rope = openba::make_rotary_tables(5, 8, c.rope_base, torch::kCPU);
  openba::AttentionMask self_mask;
  self_mask.causal = true;
  const auto& ops = openba::op_backend(OpBackendId::kCpuInference);
  const auto out = block.forward(ops, x, self_mask, rope, memory, {}, &probe);
  REQUIRE(probe.norms.size() == 3);
  REQUIRE(probe.contexts.size() == 2);
  // Independently: the first norm is the input LayerNorm of x; fc_out of the
  // recorded activation, added to what the block had before its MLP, is the output.
  const auto& ln = block.input_layernorm;
  CHECK(torch::allclose(probe.norms[0], torch::layer_norm(x, {16}, ln->weight, ln->bias, 1e-5), 1e-5, 1e-5));
  const auto mlp_out = torch::nn::functional::linear(probe.ffn, block.mlp->fc_out->weight, block.mlp->fc_out->bias);
  const auto before_mlp = out - mlp_out;
  const auto& last = block.post_inter_attn_layernorm;
  CHECK(torch::allclose(probe.norms[2], torch::layer_norm(before_mlp, {16}, last->weight, last->bias, 1e-5), 1e-4,
                        1e-4));
  CHECK(torch::equal(out, block.forward(x, self_mask, rope, memory, {})));  // the probe changes nothing
}

TEST_CASE("op backends: the CPU training forward runs each projection GEMM once", "[model][backends]") {
  // One encoder and one decoder layer: qkv, o, fc_in, fc_out (encoder);
  // qkv, o, q, kv, o, fc_in, fc_out (decoder); lm_head = 12 GEMMs. The
  // cross-attention computed q and kv twice before (14).
  const auto c = openba::test::small_config(1, 1, 16, 2, 8, 24, 40);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 3);
  model->train();
  const auto batch = openba::test::padded_batch(c.vocab_size);
  ScopeCounter::counts().clear();
  {
    ScopeCounter counter;
    auto logits = model->forward(batch);
  }
  CHECK(ScopeCounter::counts()["openba::linear"] == 12);
}
