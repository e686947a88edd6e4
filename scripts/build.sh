#!/usr/bin/env bash
# Configures and builds into ./build (Release, Ninja) against the LibTorch of
# the project's virtual environment (.venv, made by scripts/venv.sh: PyPI
# torch with CUDA and NCCL). Extra args go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/venv.sh
python=$PWD/.venv/bin/python
# The torch folder itself goes first so that its lib/ wins over any system
# LibTorch (Debian's libtorch-dev) when TorchConfig looks for its libraries.
torch_prefix=$("$python" -c 'import os, torch.utils; print(os.path.dirname(torch.__file__) + ";" + torch.utils.cmake_prefix_path)')
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DOPENBA_PYTHON="$python" "$@"
cmake --build build -j "$(nproc)"
