#include "arch/block_checkpoint.h"

#include <torch/torch.h>

#include <optional>

#include "ops/autocast.h"
#include "arch/seq2seq_model.h"
#include "ops/optional_tensor.h"

namespace openba {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// The generator state of the device the block runs on, so that the
// recomputation draws the same dropout masks as the forward did.
struct RngSnapshot {
  torch::Tensor cpu, device;
  c10::Device device_id{c10::kCPU};
};

RngSnapshot take_rng_snapshot(const torch::Device& device) {
  RngSnapshot s;
  auto cpu_gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(cpu_gen.mutex());
    s.cpu = cpu_gen.get_state();
  }
  if (!device.is_cpu()) {
    s.device_id = device;
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    s.device = gen.get_state();
  }
  return s;
}

void restore_rng_snapshot(const RngSnapshot& s) {
  auto cpu_gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(cpu_gen.mutex());
    cpu_gen.set_state(s.cpu);
  }
  if (s.device.defined()) {
    auto gen = at::globalContext().defaultGenerator(s.device_id);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s.device);
  }
}

// Sets the generators to a snapshot for its lifetime, then puts back the
// state they had (backward must not shift the random stream of later steps).
class RngFork {
 public:
  RngFork(const RngSnapshot& replay, const torch::Device& device) : after_(take_rng_snapshot(device)) {
    restore_rng_snapshot(replay);
  }
  ~RngFork() { restore_rng_snapshot(after_); }

 private:
  RngSnapshot after_;
};

bool uses_randomness(const Seq2SeqBlockImpl& block) { return block.is_training() && block.applies_dropout(); }

// Input positions of BlockFunction::apply (tensors first; the trailing
// non-tensor arguments need no gradient slot filled).
enum Slot : size_t { kX, kMemory, kCos, kSin, kPositionBias, kSelfHidden, kMemoryHidden, kFirstParameter };
constexpr size_t kTrailingArguments = 3;  // block, causal, backend

torch::Tensor run_block(const OpBackend& ops, Seq2SeqBlockImpl& block, const torch::Tensor& x, const torch::Tensor& memory,
                        const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& position_bias,
                        const torch::Tensor& self_hidden, const torch::Tensor& memory_hidden, bool causal) {
  StackInputs in;
  in.self_mask.key_hidden = empty_as_absent(self_hidden);
  in.self_mask.causal = causal;
  in.rope = RotaryTables{empty_as_absent(cos), empty_as_absent(sin)};
  in.position_bias = empty_as_absent(position_bias);
  in.memory = empty_as_absent(memory);
  in.memory_mask.key_hidden = empty_as_absent(memory_hidden);
  return block.forward(ops, x, in);
}

struct BlockFunction : torch::autograd::Function<BlockFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& memory,
                               const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& position_bias,
                               const torch::Tensor& self_hidden, const torch::Tensor& memory_hidden,
                               torch::TensorList parameters, Seq2SeqBlockImpl* block, bool causal, int64_t backend) {
    const OpBackend& ops = op_backend(static_cast<OpBackendId>(backend));
    const bool random = uses_randomness(*block);
    std::optional<RngSnapshot> rng;
    if (random) rng = take_rng_snapshot(x.device());
    // The forward runs with gradients recorded, on detached inputs, so that
    // it takes the same kernels as the recomputation and as an
    // uncheckpointed block: identical values. Its graph dies with `out`.
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      // The bias keeps its requires-grad flag: ATen's SDPA picks its kernel by
      // it, and the forward must take the plain call's (and the recomputation's).
      auto bias = position_bias.detach();
      if (bias.numel() > 0 && position_bias.requires_grad()) bias.requires_grad_(true);
      auto out = run_block(ops, *block, x.detach(), memory.detach(), cos, sin, bias, self_hidden, memory_hidden, causal);
      y = out.detach();
    }
    ctx->save_for_backward({x, memory, cos, sin, position_bias, self_hidden, memory_hidden});
    // The block outlives the graph (the model owns both), so a pointer is safe.
    ctx->saved_data["block"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(block));
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["backend"] = backend;
    ctx->saved_data["parameters"] = static_cast<int64_t>(parameters.size());
    if (rng) {
      ctx->saved_data["rng_cpu"] = rng->cpu;
      if (rng->device.defined()) ctx->saved_data["rng_device"] = rng->device;
    }
    const AutocastState autocast = current_autocast_state();
    ctx->saved_data["autocast"] = autocast.cuda_enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast.cuda_dtype);
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto* block = reinterpret_cast<Seq2SeqBlockImpl*>(static_cast<intptr_t>(ctx->saved_data["block"].toInt()));
    const bool causal = ctx->saved_data["causal"].toBool();
    const OpBackend& ops = op_backend(static_cast<OpBackendId>(ctx->saved_data["backend"].toInt()));
    const auto parameter_count = static_cast<size_t>(ctx->saved_data["parameters"].toInt());
    const std::vector<torch::Tensor> parameters = block->parameters();
    TORCH_CHECK(parameters.size() == parameter_count, "block parameters changed between forward and backward");

    auto x = saved[kX].detach().requires_grad_(ctx->needs_input_grad(kX));
    auto memory = saved[kMemory].detach();
    if (memory.numel() > 0) memory.requires_grad_(ctx->needs_input_grad(kMemory));
    auto position_bias = saved[kPositionBias].detach();
    if (position_bias.numel() > 0) position_bias.requires_grad_(ctx->needs_input_grad(kPositionBias));

    std::optional<RngFork> fork;
    if (ctx->saved_data.count("rng_cpu")) {
      RngSnapshot s;
      s.cpu = ctx->saved_data["rng_cpu"].toTensor();
      if (ctx->saved_data.count("rng_device")) {
        s.device = ctx->saved_data["rng_device"].toTensor();
        s.device_id = x.device();
      }
      fork.emplace(s, x.device());
    }
    torch::Tensor y;
    {
      AutocastScope autocast({ctx->saved_data["autocast"].toBool(),
                              static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt())});
      torch::AutoGradMode grad(true);
      y = run_block(ops, *block, x, memory, saved[kCos], saved[kSin], position_bias, saved[kSelfHidden],
                    saved[kMemoryHidden], causal);
    }

    // Gradients for the inputs that want them, in input-slot order.
    std::vector<size_t> slots;
    std::vector<torch::Tensor> wrt;
    if (x.requires_grad()) {
      slots.push_back(kX);
      wrt.push_back(x);
    }
    if (memory.requires_grad()) {
      slots.push_back(kMemory);
      wrt.push_back(memory);
    }
    if (position_bias.requires_grad()) {
      slots.push_back(kPositionBias);
      wrt.push_back(position_bias);
    }
    for (size_t i = 0; i < parameters.size(); ++i) {
      if (parameters[i].requires_grad() && ctx->needs_input_grad(kFirstParameter + i)) {
        slots.push_back(kFirstParameter + i);
        wrt.push_back(parameters[i]);
      }
    }
    tensor_list out(kFirstParameter + parameters.size() + kTrailingArguments);
    if (wrt.empty()) return out;
    const auto g = torch::autograd::grad({y}, wrt, {grads[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                         /*allow_unused=*/true);
    for (size_t i = 0; i < slots.size(); ++i) out[slots[i]] = g[i];
    return out;
  }
};

}  // namespace

torch::Tensor checkpointed_block_forward(const OpBackend& ops, Seq2SeqBlockImpl& block, const torch::Tensor& x,
                                         const StackInputs& in) {
  const std::vector<torch::Tensor> parameters = block.parameters();
  return BlockFunction::apply(x, absent_as_empty(in.memory), absent_as_empty(in.rope.cos), absent_as_empty(in.rope.sin),
                              absent_as_empty(in.position_bias), absent_as_empty(in.self_mask.key_hidden),
                              absent_as_empty(in.memory_mask.key_hidden), torch::TensorList(parameters), &block,
                              in.self_mask.causal, static_cast<int64_t>(ops.id()));
}

}  // namespace openba
