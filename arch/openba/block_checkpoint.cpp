#include "arch/openba/block_checkpoint.h"

#include <torch/torch.h>

#include <optional>

#include "ops/autocast.h"
#include "arch/openba/openba_model.h"
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

bool uses_randomness(const BlockImpl& block) {
  if (!block.is_training()) return false;
  return block.dropout > 0 || block.self_attn->dropout > 0 || (block.is_decoder && block.inter_attn->dropout > 0);
}

// Input positions of BlockFunction::apply (tensors first; the trailing
// non-tensor arguments need no gradient slot filled).
enum Slot : size_t { kX, kMemory, kCos, kSin, kSelfHidden, kMemoryHidden, kFirstParameter };
constexpr size_t kTrailingArguments = 3;  // block, causal, backend

torch::Tensor run_block(const OpBackend& ops, BlockImpl& block, const torch::Tensor& x, const torch::Tensor& memory,
                        const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& self_hidden,
                        const torch::Tensor& memory_hidden, bool causal) {
  AttentionMask self_mask;
  self_mask.key_hidden = empty_as_absent(self_hidden);
  self_mask.causal = causal;
  AttentionMask memory_mask;
  memory_mask.key_hidden = empty_as_absent(memory_hidden);
  return block.forward(ops, x, self_mask, RotaryTables{cos, sin}, empty_as_absent(memory), memory_mask);
}

struct BlockFunction : torch::autograd::Function<BlockFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& memory,
                               const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& self_hidden,
                               const torch::Tensor& memory_hidden, torch::TensorList parameters, BlockImpl* block,
                               bool causal, int64_t backend) {
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
      auto out = run_block(ops, *block, x.detach(), memory.detach(), cos, sin, self_hidden, memory_hidden, causal);
      y = out.detach();
    }
    ctx->save_for_backward({x, memory, cos, sin, self_hidden, memory_hidden});
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
    auto* block = reinterpret_cast<BlockImpl*>(static_cast<intptr_t>(ctx->saved_data["block"].toInt()));
    const bool causal = ctx->saved_data["causal"].toBool();
    const OpBackend& ops = op_backend(static_cast<OpBackendId>(ctx->saved_data["backend"].toInt()));
    const auto parameter_count = static_cast<size_t>(ctx->saved_data["parameters"].toInt());
    const std::vector<torch::Tensor> parameters = block->parameters();
    TORCH_CHECK(parameters.size() == parameter_count, "block parameters changed between forward and backward");

    auto x = saved[kX].detach().requires_grad_(ctx->needs_input_grad(kX));
    auto memory = saved[kMemory].detach();
    if (memory.numel() > 0) memory.requires_grad_(ctx->needs_input_grad(kMemory));

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
      y = run_block(ops, *block, x, memory, saved[kCos], saved[kSin], saved[kSelfHidden], saved[kMemoryHidden], causal);
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

torch::Tensor checkpointed_block_forward(const OpBackend& ops, BlockImpl& block, const torch::Tensor& x, const AttentionMask& self_mask,
                                         const RotaryTables& rope, const torch::Tensor& memory,
                                         const AttentionMask& memory_mask) {
  const std::vector<torch::Tensor> parameters = block.parameters();
  return BlockFunction::apply(x, absent_as_empty(memory), rope.cos, rope.sin, absent_as_empty(self_mask.key_hidden),
                              absent_as_empty(memory_mask.key_hidden), torch::TensorList(parameters), &block,
                              self_mask.causal, static_cast<int64_t>(ops.id()));
}

}  // namespace openba
