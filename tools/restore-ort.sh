#!/usr/bin/env bash
# Restores ONNX Runtime (official C# API sources + Linux x64 native library) from the npm registry,
# pinned and checksummed, into the cache. The build calls this; nothing third-party is committed.
# Usage: tools/restore-ort.sh [--gpu]   prints the cache folder on success.
# With gpu: the CUDA/TensorRT provider libraries only. ORT loads them from the folder of its core library, and
# the CPU package's core reports "CUDA execution provider is not enabled in this build": put them beside a
# CUDA-enabled libonnxruntime.so and name that file in ONNXSLIM_ORT_LIBRARY.
set -euo pipefail
cache="${ONNXSLIM_CACHE:-$HOME/.cache/onnxslim}"
pkg=com.github.asus4.onnxruntime version=0.4.9
sha=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
if [[ "${1:-}" == "--gpu" || "${1:-}" == "gpu" ]]; then
  # CUDA/TensorRT execution providers only (180 MB); the core library of the CPU package loads them.
  pkg=com.github.asus4.onnxruntime.linux-x64-gpu
  sha=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
fi
dest="$cache/ort/$pkg-$version"
if [[ -f "$dest/.complete" ]]; then echo "$dest"; exit 0; fi

mkdir -p "$cache/ort"
lock="$cache/ort/.lock"
exec 9>"$lock"
flock 9                                   # parallel builds (tests + CLI) restore once
if [[ -f "$dest/.complete" ]]; then echo "$dest"; exit 0; fi

tarball="$cache/ort/$pkg-$version.tgz"
if [[ ! -f "$tarball" ]]; then
  command -v npm >/dev/null || { echo "restore-ort: npm is needed to fetch $pkg@$version" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null) || { echo "restore-ort: npm pack $pkg@$version failed" >&2; exit 1; }
  mv "$tmp"/*.tgz "$tarball.part" && mv "$tarball.part" "$tarball"
  rm -rf "$tmp"
fi
echo "$sha  $tarball" | sha256sum -c --status || { echo "restore-ort: checksum mismatch for $tarball" >&2; rm -f "$tarball"; exit 1; }

work="$dest.part"
rm -rf "$work" && mkdir -p "$work"
tar -xzf "$tarball" -C "$work" --wildcards 'package/Runtime/*.cs' 'package/Plugins/Linux/x64/*.so' 'package/LICENSE' 'package/ThirdPartyNotices.txt' 2>/dev/null \
  || tar -xzf "$tarball" -C "$work" --wildcards 'package/Plugins/Linux/x64/*' 'package/LICENSE'
mkdir -p "$work/native"
find "$work/package/Plugins/Linux/x64" -name '*.so*' ! -name '*.meta' -exec mv {} "$work/native/" \;
rm -rf "$dest" && mv "$work" "$dest"
touch "$dest/.complete"
echo "$dest"
