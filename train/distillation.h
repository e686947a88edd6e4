// Distillation from a teacher checkpoint during training (the `distill:`
// section of a training config, DistillConfig in train/train_config.h).
//
// The student's objective per counted target token is
//   (1 - alpha) * CE(student) + alpha * T^2 * KL(teacher_T || student_T)
// with both distributions softened by the temperature T (forward KL, as
// Minitron and DistilBART; the T^2 keeps the gradient's scale independent
// of T). With top_k the teacher keeps its k largest logits per token: its
// distribution is renormalized over those k ids and the KL sums over them,
// while the student's log-probabilities still normalize over the whole
// vocabulary, so the term stays >= 0 and equals the full KL when k is the
// vocabulary. Rows whose label is -100 contribute nothing.
//
// The teacher runs forward only, in eval mode (no dropout), on the same
// micro-batch as the student, and holds no state: a resumed run sees the
// same teacher outputs. Each data-parallel rank holds its own replica.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/checkpoint.h"
#include "arch/seq2seq_model.h"
#include "train/train_config.h"

namespace openba {

class TokenizerLayout;

// What the teacher says about one micro-batch, per flattened target
// position r of [B * Td] (padded positions included; the loss masks them).
struct TeacherTargets {
  torch::Tensor probs;        // [R, K] fp32 teacher probabilities at temperature T (K = V, or top_k)
  torch::Tensor index;        // [R, K] int64 vocabulary ids; undefined when K = V (ids 0..V-1 in order)
  torch::Tensor neg_entropy;  // [R] fp32: sum_k p log p (the KL's constant part)
  torch::Tensor nll_sum;      // scalar fp64: the teacher's own CE (T = 1) summed over counted tokens
};

class Teacher {
 public:
  // Opens `config.teacher` and checks it against the student before any
  // training: a readable checkpoint of the same family, with the student's
  // tokenizer (same fingerprint) and vocabulary rows, top_k within the
  // vocabulary, and not inside the run's output directory. Errors name the
  // teacher directory. The weights are loaded on `device`: fp32 on CPU
  // (bf16 matmuls are slow there), the checkpoint's own dtype on CUDA.
  Teacher(const DistillConfig& config, const Checkpoint& student, const TokenizerLayout& student_tokenizer,
          const std::string& run_out_dir, const torch::Device& device);

  TeacherTargets targets(const Seq2SeqBatch& batch);

  // "DIR (5.08M parameters, 19.4 MiB fp32 on cpu, top_k all)" for the log.
  std::string describe() const;
  uint64_t weight_bytes() const { return weight_bytes_; }

 private:
  DistillConfig config_;
  Seq2SeqModel model_{nullptr};
  std::string summary_;
  uint64_t weight_bytes_ = 0;
};

// The teacher checkpoint at `teacher` (an existing directory) opened and
// checked against a student with `student_rows` vocabulary rows and the
// tokenizer `student_fingerprint` (`student` names it in errors): one this
// family reads, carrying the same spiece.model and as many rows. Error
// naming "distill.teacher DIR" otherwise. openba-pretrain (Teacher) and the
// pipeline's plan (a teacher given as a directory) both check through it.
Checkpoint open_matching_teacher(const std::string& teacher, int64_t student_rows,
                                 const std::string& student_fingerprint, const std::string& student);

// distill.top_k within a vocabulary of `rows`; Error otherwise.
void check_teacher_top_k(int64_t top_k, int64_t rows);

// Per-row T^2 * KL(teacher_T || student_T) for student logits [R, V] (fp32),
// labels [R] (-100 = not counted: 0) and the teacher's targets for the same
// rows. Differentiable in the student logits: the distillation_kl op of
// select_op_backend(logits) (ops/op_backend.h).
torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& labels,
                                const TeacherTargets& teacher, double temperature);

// The same on the aten backend, always (the reference the fused kernel is
// tested against).
torch::Tensor distillation_loss_aten(const torch::Tensor& student_logits, const torch::Tensor& labels,
                                     const TeacherTargets& teacher, double temperature);

// The teacher side of TeacherTargets from teacher logits [R, V] (any float
// dtype; computed in fp32) and labels [R]; top_k 0 = every logit.
TeacherTargets teacher_targets_from_logits(const torch::Tensor& logits, const torch::Tensor& labels, double temperature,
                                           int64_t top_k);

}  // namespace openba
