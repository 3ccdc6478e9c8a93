#!/usr/bin/env bash
# Runs every test of provision on a fresh Debian 12 machine (root): installs what the tests
# need, then static checks, unit and validator tests, short fuzz runs, the reproducible-build
# check and the end-to-end tests in a systemd-nspawn booted Debian root.
# Each phase prints its duration. Exit code non-zero if anything fails.
# FUZZCOUNT (default 20000 executions per target) bounds the fuzz runs. Counts, not durations:
# with -fuzztime as a duration, Go's fuzz coordinator can report its own deadline as a failure
# (`context deadline exceeded`, a race between the deadline and its child context on a loaded
# machine; internal/fuzz/fuzz.go), which failed CI at random. A count has no deadline to race;
# `timeout` still bounds each target's wall time so a stall fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

phase_start=0
phase() { phase_start=$(date +%s%N); printf '\n=== %s\n' "$1"; }
phase_end() { printf '=== %s: %d ms\n' "$1" $((($(date +%s%N) - phase_start) / 1000000)); }

phase "prerequisites"
# Debian packages the validators and the e2e harness need (see README "Testing").
# gcc, libc6-dev, libseccomp-dev: hack/build-containerd.sh links runc (cgo) static-pie with libseccomp.
# tinyproxy-bin: the forward proxy of the e2e TestProxy (the binary only: no service is installed or started).
pkgs=(shellcheck cloud-init systemd ignition debootstrap systemd-container iproute2
      apt-utils dpkg-dev rpm dnf createrepo-c curl ca-certificates tar gzip
      gcc libc6-dev libseccomp-dev tinyproxy-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "go is not on PATH (Go 1.26 expected at /usr/local/go/bin)" >&2; exit 1; }
go version
phase_end "prerequisites"

phase "static checks"
# Pinned analysers, each installed once into a directory named by its version.
STATICCHECK_VERSION=v0.7.0 # staticcheck 2026.1
GOIMPORTS_VERSION=v0.40.0  # golang.org/x/tools
tools="${PROVISION_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/provision-tools}"
tool() { # tool NAME PACKAGE VERSION: prints the path of the binary, installing it if missing
  local bin="$tools/$1@$3"
  if [ ! -x "$bin/$1" ]; then
    echo "installing $2@$3" >&2
    GOBIN="$bin" go install "$2@$3" >&2
  fi
  printf '%s/%s\n' "$bin" "$1"
}
staticcheck=$(tool staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION")
goimports=$(tool goimports golang.org/x/tools/cmd/goimports "$GOIMPORTS_VERSION")
"$staticcheck" -version
unformatted=$(git ls-files -z '*.go' | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then echo "gofmt needed on: $unformatted" >&2; exit 1; fi
unsorted=$(git ls-files -z '*.go' | xargs -0 "$goimports" -local github.com/provision-dev/provision -l)
if [ -n "$unsorted" ]; then echo "goimports -local github.com/provision-dev/provision needed on: $unsorted" >&2; exit 1; fi
go vet ./...
go vet -tags e2e ./...
"$staticcheck" ./...
"$staticcheck" -tags e2e ./...
# hack/publish is its own module.
(cd hack/publish && go vet ./... && "$staticcheck" ./...)
# capi/ (the Cluster API bootstrap provider) is its own module: controller-runtime stays out of
# provision's go.mod. Its CRDs, RBAC role and deepcopy functions must be what controller-gen generates.
(cd capi && go vet ./... && "$staticcheck" ./... && bash hack/generate.sh --verify)
shellcheck hack/*.sh capi/hack/*.sh .ci/run
go build -o /dev/null ./cmd/provision
phase_end "static checks"

phase "unit, golden and validator tests"
go test -count=1 -timeout 30m ./...
# hack/publish is its own module (Google's storage client stays out of provision's go.mod).
(cd hack/publish && go test -count=1 ./...)
# capi/: unit tests, and the controller against a real kube-apiserver and etcd (envtest with
# hack/build-kube.sh's binaries, Cluster API's CRDs from the module cache). About a minute with the
# binaries cached; on a cold cache build-kube.sh first builds them (the e2e phase then reuses them).
(cd capi && go test -count=1 -timeout 45m ./...)
phase_end "unit, golden and validator tests"

phase "fuzz (${FUZZCOUNT:-20000} executions per target)"
# Every Fuzz* function in the module, each run alone for a bounded time.
while read -r pkg; do
  for fn in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $fn"
    fuzz_log=$(mktemp)
    if ! timeout 600 go test -run "^$" -fuzz "^${fn}\$" -fuzztime "${FUZZCOUNT:-20000}x" -fuzzminimizetime 2s "$pkg" >"$fuzz_log" 2>&1; then
      tail -n 40 "$fuzz_log" >&2
      rm -f "$fuzz_log"
      exit 1
    fi
    tail -n 3 "$fuzz_log"
    rm -f "$fuzz_log"
  done
done < <(go list ./...)
phase_end "fuzz"

phase "benchmarks (1 iteration each, smoke)"
bench_log=$(mktemp)
if ! go test -run '^$' -bench . -benchtime 1x ./... >"$bench_log" 2>&1; then
  grep -v '^ok\|no test files\|^Benchmark\|^goos\|^goarch\|^pkg\|^cpu\|^PASS' "$bench_log" >&2
  rm -f "$bench_log"
  exit 1
fi
rm -f "$bench_log"
# capi/: 1,000 Machines reconciled by the controller binary (fails above 60 s or 200 MiB).
(cd capi && go test -count=1 -run '^$' -bench . -benchtime 1x ./...)
phase_end "benchmarks"

phase "reproducible build"
bash hack/check-reproducible.sh
phase_end "reproducible build"

if [ "$(id -u)" -ne 0 ]; then
  echo "FAIL: the end-to-end tests need root (systemd-nspawn, network namespaces)" >&2
  exit 1
fi
phase "end-to-end binaries (built from the Go module proxy once, cached in ${PROVISION_TEST_CACHE:-/var/cache/provision-test})"
go test -count=1 -tags e2e -timeout 80m -run '^TestBinaries$' -v ./internal/e2e/
phase_end "end-to-end binaries"

phase "end-to-end (systemd-nspawn)"
# ./internal/testenv: its e2e-tagged tests run the harness's own servers (the registry's push client).
go test -count=1 -tags e2e -timeout 60m -v ./internal/testenv/ ./internal/e2e/...
phase_end "end-to-end"

echo
echo "all tests passed"
