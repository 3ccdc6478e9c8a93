#!/usr/bin/env bash
# Proves hack/build.sh is reproducible: builds the committed HEAD twice, from two clones at
# different paths (so -trimpath matters) with separate build caches, and compares the sha256s.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rev=$(git rev-parse HEAD)
for i in 1 2; do
  git clone -q . "$work/src$i"
  git -C "$work/src$i" checkout -q "$rev"
  GOCACHE="$work/cache$i" VERSION=repro-check bash "$work/src$i/hack/build.sh" "$work/out$i" 2>"$work/log$i"
done
status=0
for f in "$work"/out1/*.sha256; do
  name=$(basename "$f")
  if cmp -s "$f" "$work/out2/$name"; then
    echo "reproducible: $(cat "$f")"
  else
    echo "NOT reproducible: $name: $(cut -d' ' -f1 "$f") vs $(cut -d' ' -f1 "$work/out2/$name")" >&2
    status=1
  fi
done
exit $status
