"""Distillation terms by an independent implementation: the reference model
(openba_reference.py) runs student and teacher on each example of a preview
file (openba-pretrain --preview) one at a time, without padding, and sums

  ce       = CE of the student on the labels,
  kd       = T^2 * KL(softmax(teacher / T) || softmax(student / T))
             (top_k > 0: the teacher renormalized over its k largest logits),
  teacher  = CE of the teacher,

over the counted target tokens of the first N examples. Prints one JSON line
{"targets", "ce", "kd", "teacher_ce"} (sums)."""
import json
import sys

import torch
import torch.nn.functional as F

from openba_reference import Reference


def main():
    student_dir, teacher_dir, preview, n, temperature, top_k = sys.argv[1:7]
    n, temperature, top_k = int(n), float(temperature), int(top_k)
    student, teacher = Reference(student_dir), Reference(teacher_dir)
    sums = {"targets": 0, "ce": 0.0, "kd": 0.0, "teacher_ce": 0.0}
    with torch.no_grad():
        for line in open(preview).read().splitlines()[:n]:
            ex = json.loads(line)
            labels = torch.tensor(ex["labels"])
            s = student.logits(ex["input_ids"], ex["labels"]).double()
            t = teacher.logits(ex["input_ids"], ex["labels"]).double()
            sums["targets"] += int((labels != -100).sum())
            sums["ce"] += F.cross_entropy(s, labels, ignore_index=-100, reduction="sum").item()
            sums["teacher_ce"] += F.cross_entropy(t, labels, ignore_index=-100, reduction="sum").item()
            log_q = F.log_softmax(s / temperature, -1)
            if 0 < top_k < t.shape[-1]:
                values, ids = (t / temperature).topk(top_k, -1)
                log_p = F.log_softmax(values, -1)
                log_q = log_q.gather(-1, ids)
            else:
                log_p = F.log_softmax(t / temperature, -1)
            kl = (log_p.exp() * (log_p - log_q)).sum(-1)
            sums["kd"] += (temperature ** 2) * kl[labels != -100].sum().item()
    print(json.dumps(sums))


if __name__ == "__main__":
    main()
