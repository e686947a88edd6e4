#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on Debian 12.
# Safe to re-run. Uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas0-pthread                   # the CPU kernels' BLAS: 1.03-1.39x the wheel's MKL here (ops/blas.h)
  libgloo-dev                            # gloo headers that c10d's ProcessGroupGloo.hpp includes (the wheel has none)
  libsentencepiece-dev sentencepiece     # tokenizer library and the real spm_* tools
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev catch2
  zlib1g-dev libzstd-dev zstd gzip      # compressed corpora (zstd/gzip tools for tests)
  bible-kjv fortunes-zh                 # the bilingual demo corpus (English KJV Bible, Chinese fortunes)
  python3 python3-venv                   # the project's virtual environment (.venv) with PyPI torch
  clang libclang-rt-14-dev               # libFuzzer targets
  chromium                               # headless rendering of report.html in tests
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch comes from PyPI's torch wheel, pinned, in the project's own virtual
# environment: its headers, libraries and CMake config (built with CUDA 13.0,
# cuDNN and NCCL; on a machine without a GPU everything runs on the CPU) are
# what the build links, and its Python torch is the tests' independent
# reference. The lent GPU machines run the same version (2.11 + CUDA 13.0).
# A fresh install with the nvidia-* runtime wheels (4.6 GB) took 50 s here.
"$(dirname "$0")/venv.sh"
echo "setup: dependencies present"
