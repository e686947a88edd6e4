#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on Debian 12.
# Safe to re-run. Uses sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-pthread      # LibTorch 1.13 (CPU); OpenBLAS: ~27x the reference BLAS on GEMM
  libgloo-dev                            # headers of c10d's Gloo backend (distributed training on CPU)
  libsentencepiece-dev sentencepiece     # tokenizer library and the real spm_* tools
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev catch2
  zlib1g-dev libzstd-dev zstd gzip      # compressed corpora (zstd/gzip tools for tests)
  bible-kjv fortunes-zh                 # the bilingual demo corpus (English KJV Bible, Chinese fortunes)
  python3 python3-torch                  # independent reference model and real torch.save files for tests
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
# LibTorch links libblas.so.3: make sure it resolves to OpenBLAS, not the reference BLAS.
if command -v update-alternatives >/dev/null; then
  blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')
  case "$blas" in
    *openblas*) ;;
    *) as_root update-alternatives --auto libblas.so.3-x86_64-linux-gnu || true ;;
  esac
fi
echo "setup: dependencies present"
