#!/usr/bin/env bash
# Run here, before bench/gpu/run.sh goes to a lent GPU machine (no apt, no
# network there): downloads the Debian packages the build needs as .debs into
# .device/debs (ignored by git; the device tool carries it: carry [".device"]).
# bench/gpu/run.py extracts them into a prefix there. About 5 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32   # tokenizer library (and what it links)
  libyaml-cpp-dev libyaml-cpp0.7
  libcli11-dev nlohmann-json3-dev
  libzstd-dev libzstd1 zlib1g-dev zlib1g
  libgloo-dev                                                 # headers c10d's ProcessGroupGloo.hpp includes
)
mkdir -p .device/debs
cd .device/debs
rm -f ./*.deb
apt-get download "${packages[@]}" >/dev/null
du -sh . | awk '{print "prepare: .device/debs holds " $1}'
ls
