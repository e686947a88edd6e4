#!/usr/bin/env python3
"""Rewrites a safetensors checkpoint directory as pytorch_model.bin with the
real torch.save, storing lm_head.weight as the same tensor as
shared_embedding.weight (as the released OpenBA files do).
Usage: safetensors_to_bin.py IN_DIR OUT_DIR"""
import collections
import os
import shutil
import sys

import torch

from openba_reference import load_state_dict

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
sd = load_state_dict(src)
ordered = collections.OrderedDict(sd)
assert torch.equal(ordered["lm_head.weight"], ordered["shared_embedding.weight"])
ordered["lm_head.weight"] = ordered["shared_embedding.weight"]
torch.save(ordered, os.path.join(dst, "pytorch_model.bin"))
shutil.copy(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))
