#!/usr/bin/env bash
# Builds CNCF distribution's registry (cmd/registry) from the Go module proxy into a cache outside
# the repository, for the end-to-end test of a private registry (TLS with the test's CA, htpasswd):
#   hack/build-registry.sh [VERSION]   (default v3.1.2; the proxy serves v3.0.0, v3.1.0, v3.1.2)
# Output: $CACHE/registry/VERSION/registry; CACHE = $PROVISION_TEST_CACHE or /var/cache/provision-test.
# Built as upstream's Makefile does (version ldflags), without cgo. Re-runs check the cached
# binary's version and rebuild only when it is missing or wrong.
set -euo pipefail
version=${1:-v3.1.2}
cache=${PROVISION_TEST_CACHE:-/var/cache/provision-test}
out="$cache/registry/$version"
mkdir -p "$out"
export CGO_ENABLED=0

SCRIPT=build-registry
# shellcheck source=hack/lib-modsrc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-modsrc.sh"

registry_ok() {
  local want="registry github.com/distribution/distribution/v3 $version"
  [ -x "$out/registry" ] && reports "$out/registry" --version
}

if registry_ok; then
  echo "registry $version: cached in $out"
else
  t=$(date +%s%N)
  module_src "github.com/distribution/distribution/v3@$version"
  pkg=github.com/distribution/distribution/v3
  rm -f "$out/registry"
  (cd "$src" && rm -rf vendor && go build -trimpath \
    -ldflags "-s -w -X $pkg/version.version=$version -X $pkg/version.revision=go-module-proxy -X $pkg/version.mainpkg=$pkg" \
    -o "$out/registry" ./cmd/registry)
  registry_ok || { echo "build-registry: registry $version build does not report $version" >&2; exit 1; }
  echo "registry $version: built in $(ms "$t") ms"
fi
ls -la "$out"
