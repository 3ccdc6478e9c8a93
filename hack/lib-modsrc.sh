# Shared by hack/build-kube.sh and hack/build-containerd.sh (sourced, not run): building
# binaries from a module's source on the Go module proxy. The caller sets SCRIPT (its name,
# for errors) and `set -euo pipefail`.
# shellcheck shell=bash

export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local

# ms START_NS: milliseconds since START_NS (date +%s%N).
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# module_src MODULE@VERSION: sets $src to a writable copy of the module's source from the Go
# module proxy, in a temp dir removed on exit (no subshell, so the cleanup list sees it).
tmpdirs=()
cleanup() { local d; for d in "${tmpdirs[@]}"; do chmod -R u+w "$d" 2>/dev/null; rm -rf "$d"; done; }
trap cleanup EXIT
module_src() {
  local dir
  dir=$(go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "$SCRIPT: go mod download $1 failed" >&2; exit 1; }
  src=$(mktemp -d)
  tmpdirs+=("$src")
  cp -r "$dir/." "$src/"
  chmod -R u+w "$src"
}

# reports CMD...: CMD's output contains $want (set by the caller). Output is captured first: `cmd | grep -q` under
# pipefail fails when grep exits early and the command gets SIGPIPE.
# shellcheck disable=SC2154 # want is the caller's
reports() { local out; out=$("$@" 2>/dev/null) || return 1; [[ "$out" == *"$want"* ]]; }
