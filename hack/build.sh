#!/usr/bin/env bash
# Builds provision for linux/amd64 and linux/arm64: static, -trimpath, version stamped,
# reproducible (two builds of one commit give the same sha256). Writes
#   OUT/provision-linux-ARCH and OUT/provision-linux-ARCH.sha256 ("HASH  NAME", sha256sum's form).
# Usage: hack/build.sh [OUT_DIR] (default _output); VERSION and ARCHES override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-_output}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
arches=${ARCHES:-"amd64 arm64"}
mkdir -p "$out"

for arch in $arches; do
  name="provision-linux-${arch}"
  start=$(date +%s%N)
  # -buildvcs=false and -trimpath keep paths and VCS state out; -buildid= drops the
  # content-independent build ID so the bytes depend only on source, toolchain and flags.
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=${version}" \
    -o "$out/$name.tmp" ./cmd/provision
  mv "$out/$name.tmp" "$out/$name"
  (cd "$out" && sha256sum "$name" > "$name.sha256.tmp" && mv "$name.sha256.tmp" "$name.sha256")
  end=$(date +%s%N)
  printf '%s: %s bytes, sha256 %s, %d ms\n' "$name" "$(stat -c %s "$out/$name")" \
    "$(cut -d' ' -f1 "$out/$name.sha256")" $(((end - start) / 1000000)) >&2
done
