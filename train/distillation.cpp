#include "train/distillation.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "ops/autocast.h"
#include "runtime/checkpoint.h"
#include "ops/op_backend.h"
#include "runtime/model_io.h"
#include "ops/torch_dtype.h"
#include "tokenizer/layout.h"
#include "util/error.h"
#include "util/format.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;

Checkpoint open_matching_teacher(const std::string& dir, int64_t student_rows, const std::string& student_fingerprint,
                                 const std::string& student) {
  const std::string what = "distill.teacher " + dir;
  std::unique_ptr<Checkpoint> teacher;
  try {
    teacher = std::make_unique<Checkpoint>(Checkpoint::open(dir));
  } catch (const Error& e) {
    throw Error(what + ": not a checkpoint this family can read (" + std::string(e.what()) + ")");
  }
  if (!fs::is_regular_file(fs::path(dir) / "spiece.model")) {
    throw Error(what + ": has no tokenizer (spiece.model); the teacher must carry the student's tokenizer");
  }
  const std::string fingerprint = TokenizerLayout::load(dir).fingerprint();
  if (fingerprint != student_fingerprint) {
    throw Error(what + ": its tokenizer (fingerprint " + fingerprint.substr(0, 16) + "...) is not the student's (" +
                student_fingerprint.substr(0, 16) + "..., " + student +
                "): the two models would not mean the same thing by a token id");
  }
  const int64_t rows = teacher->config().vocab_size;
  if (rows != student_rows) {
    throw Error(what + ": has " + std::to_string(rows) + " vocabulary rows but the student " + student + " has " +
                std::to_string(student_rows) + " (distillation compares their logits id by id)");
  }
  return std::move(*teacher);
}

void check_teacher_top_k(int64_t top_k, int64_t rows) {
  if (top_k > rows) {
    throw Error("distill.top_k " + std::to_string(top_k) + " is larger than the vocabulary (" + std::to_string(rows) +
                " rows)");
  }
}

Teacher::Teacher(const DistillConfig& config, const Checkpoint& student, const TokenizerLayout& student_tokenizer,
                 const std::string& run_out_dir, const torch::Device& device)
    : config_(config) {
  const std::string what = "distill.teacher " + config.teacher;
  if (!fs::is_directory(config.teacher)) throw Error(what + ": not a directory");
  if (path_is_same_or_inside(config.teacher, run_out_dir)) {
    throw Error(what + ": is inside this run's output directory " + run_out_dir +
                " (a run cannot be its own teacher; point at the unpruned model or an earlier run's output)");
  }
  const Checkpoint teacher = open_matching_teacher(config.teacher, student.config().vocab_size,
                                                  student_tokenizer.fingerprint(), student.dir());
  check_teacher_top_k(config.top_k, teacher.config().vocab_size);
  // Its own precision on an accelerator; fp32 on CPU, where bf16/f16
  // matmuls are slow (and the student computes in fp32 too).
  const torch::ScalarType dtype = device.is_cuda() ? to_scalar_type(teacher.config().dtype) : torch::kFloat;
  model_ = load_model(teacher, device, dtype);
  set_dropout(*model_, 0.0);
  model_->eval();
  int64_t params = 0;
  for (auto& [name, p] : unique_named_parameters(*model_)) {  // a tied lm_head counted once
    p.set_requires_grad(false);
    params += p.numel();
    weight_bytes_ += static_cast<uint64_t>(p.numel() * p.element_size());
  }
  auto number = [](double v) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", v);
    return std::string(text);
  };
  summary_ = config.teacher + " (" + teacher.config().summary() + "; " + human_count(static_cast<uint64_t>(params)) +
             " parameters, " + human_bytes(weight_bytes_) + " " + dtype_name(from_scalar_type(dtype)) + " on " +
             device.str() + " per rank; alpha " + number(config.alpha) + ", temperature " +
             number(config.temperature) + ", top_k " +
             (config.top_k > 0 ? std::to_string(config.top_k) : std::string("all")) + ")";
}

std::string Teacher::describe() const { return summary_; }

TeacherTargets Teacher::targets(const Seq2SeqBatch& batch) {
  torch::NoGradGuard no_grad;
  torch::Tensor logits;
  {
    AutocastScope autocast(training_autocast(batch.labels.device().is_cuda()));
    logits = model_->forward(batch);  // [B, Td, V] fp32
  }
  const int64_t rows = logits.size(0) * logits.size(1);
  return teacher_targets_from_logits(logits.reshape({rows, logits.size(2)}), batch.labels.reshape({rows}),
                                     config_.temperature, config_.top_k);
}

TeacherTargets teacher_targets_from_logits(const torch::Tensor& logits_in, const torch::Tensor& labels, double temperature,
                                           int64_t top_k) {
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = logits_in.to(torch::kFloat);
  const int64_t v = logits.size(1);
  const torch::Tensor counted = labels != -100;
  TeacherTargets t;
  // The teacher's own cross-entropy on the batch (T = 1).
  const torch::Tensor picked = logits.gather(1, labels.clamp_min(0).to(torch::kLong).unsqueeze(1)).squeeze(1);
  const torch::Tensor nll = (torch::logsumexp(logits, 1) - picked).masked_fill(counted.logical_not(), 0.0);
  t.nll_sum = nll.to(torch::kDouble).sum();
  const torch::Tensor scaled = temperature == 1.0 ? logits : logits / temperature;
  torch::Tensor log_p;
  if (top_k > 0 && top_k < v) {
    auto [values, index] = scaled.topk(top_k, 1, /*largest=*/true, /*sorted=*/true);
    log_p = torch::log_softmax(values, 1);
    t.index = index;
  } else {
    log_p = torch::log_softmax(scaled, 1);
  }
  t.probs = log_p.exp().contiguous();
  // p log p with 0 log 0 = 0 (an underflowed probability adds nothing).
  t.neg_entropy = torch::where(t.probs > 0, t.probs * log_p, torch::zeros_like(log_p)).sum(1).contiguous();
  return t;
}

torch::Tensor distillation_loss_aten(const torch::Tensor& student_logits, const torch::Tensor& labels,
                                     const TeacherTargets& teacher, double temperature) {
  return aten_ops().distillation_kl(student_logits, labels, teacher.probs, teacher.index, teacher.neg_entropy,
                                    temperature);
}

torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& labels,
                                const TeacherTargets& teacher, double temperature) {
  return select_op_backend(student_logits)
      .distillation_kl(student_logits, labels, teacher.probs, teacher.index, teacher.neg_entropy, temperature);
}

}  // namespace openba
