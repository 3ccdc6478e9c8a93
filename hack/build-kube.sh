#!/usr/bin/env bash
# Builds Kubernetes binaries (kubelet, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl), etcd and crictl from the Go module proxy into a cache outside the repository, for the
# end-to-end tests.
#   hack/build-kube.sh [VERSION]   (default v1.37.2; ETCD_VERSION default v3.5.16,
#                                   CRICTL_VERSION default v1.37.0: the newest cri-tools the proxy serves)
# Output: $CACHE/kube/VERSION/{kubelet,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl},
#         $CACHE/etcd/ETCD_VERSION/etcd, $CACHE/crictl/CRICTL_VERSION/crictl;
#         CACHE = $PROVISION_TEST_CACHE or /var/cache/provision-test.
# ONLY=crictl builds (or checks) crictl alone; ONLY=kubelet the kubelet alone (a node's
# kubelet of another version than the cluster's, as in the upgrade scenario).
# Re-runs check the cached binaries' versions and build only the binaries that are missing or
# wrong (a cache from before kube-scheduler was added gets kube-scheduler alone, from the warm
# Go build cache). Concurrent runs for one VERSION are serialised by a lock in the cache.
set -euo pipefail
version=${1:-v1.37.2}
etcd_version=${ETCD_VERSION:-v3.5.16}
cache=${PROVISION_TEST_CACHE:-/var/cache/provision-test}
out="$cache/kube/$version"
etcd_out="$cache/etcd/$etcd_version"
crictl_version=${CRICTL_VERSION:-v1.37.0}
crictl_out="$cache/crictl/$crictl_version"
mkdir -p "$out" "$etcd_out" "$crictl_out"
export CGO_ENABLED=0

SCRIPT=build-kube
# shellcheck source=hack/lib-modsrc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-modsrc.sh"

# kube_missing: sets $missing to the packages (./cmd/NAME) of the binaries in $bins that are
# absent or do not report $version.
kube_missing() {
  local b want
  missing=()
  for b in "${bins[@]}"; do
    want="Kubernetes $version"
    local args=(--version)
    if [ "$b" = kubectl ]; then
      want="Client Version: $version"
      args=(version --client)
    fi
    [ -x "$out/$b" ] && reports "$out/$b" "${args[@]}" || missing+=("./cmd/$b")
  done
}

crictl_ok() {
  local want="crictl version $crictl_version"
  [ -x "$crictl_out/crictl" ] && reports "$crictl_out/crictl" --version
}

etcd_ok() {
  local want="etcd Version: ${etcd_version#v}"
  [ -x "$etcd_out/etcd" ] && reports "$etcd_out/etcd" --version
}

bins=(kubelet kube-apiserver kube-controller-manager kube-scheduler kubectl)
if [ "${ONLY:-}" = kubelet ]; then
  bins=(kubelet)
fi
if [ "${ONLY:-}" = crictl ]; then
  echo "kube, etcd: skipped (ONLY=crictl)"
else
  # One build per VERSION at a time: a second run waits, then finds the binaries cached.
  exec 9>"$out/.build.lock"
  flock 9
  kube_missing
  if [ ${#missing[@]} -eq 0 ]; then
    echo "kube $version: cached in $out"
  else
    t=$(date +%s%N)
    module_src "k8s.io/kubernetes@$version"
    cd "$src"
    rm -rf vendor go.work go.work.sum staging
    minor=v0.${version#v1.}
    # Staging modules: pin to the published v0.X.Y and drop the ./staging replaces.
    sed -i -E "s#^(\s+k8s\.io/[a-z0-9-]+) v0\.0\.0\$#\1 $minor#; /=> \.\/staging\//d; /k8s\.io\/sample-apiserver/d" go.mod
    gitcommit=$(printf '%040d' 0)
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitCommit=$gitcommit -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$version"
    echo "kube $version: building ${missing[*]} (cold builds take several minutes on 2 cores)"
    go build -trimpath -ldflags "$ldflags" -o "$out/" "${missing[@]}"
    cd /
    kube_missing
    [ ${#missing[@]} -eq 0 ] || { echo "build-kube: built binaries do not report $version: ${missing[*]}" >&2; exit 1; }
    echo "kube $version: built in $(ms "$t") ms"
  fi
  exec 9>&-
fi

if [ -n "${ONLY:-}" ]; then
  :
elif etcd_ok; then
  echo "etcd $etcd_version: cached in $etcd_out"
else
  t=$(date +%s%N)
  module_src "go.etcd.io/etcd/server/v3@$etcd_version"
  # The module's replace directives point at sibling directories of etcd's repository:
  # drop them so the published go.etcd.io/etcd/*/v3 modules of the same version are used.
  (cd "$src" && sed -i '/^replace (/,/^)/d' go.mod && go build -trimpath -ldflags "-s -w" -o "$etcd_out/etcd" .)
  etcd_ok || { echo "build-kube: etcd $etcd_version build failed" >&2; exit 1; }
  echo "etcd $etcd_version: built in $(ms "$t") ms"
fi
if [ "${ONLY:-}" = kubelet ]; then
  :
elif crictl_ok; then
  echo "crictl $crictl_version: cached in $crictl_out"
else
  t=$(date +%s%N)
  module_src "sigs.k8s.io/cri-tools@$crictl_version"
  # The module's vendor/ is not in sync with the proxy's copy: build from the module cache instead.
  (cd "$src" && rm -rf vendor && go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version" -o "$crictl_out/crictl" ./cmd/crictl)
  crictl_ok || { echo "build-kube: crictl $crictl_version build failed" >&2; exit 1; }
  echo "crictl $crictl_version: built in $(ms "$t") ms"
fi
case "${ONLY:-}" in
  crictl) ls -la "$crictl_out" ;;
  kubelet) ls -la "$out" ;;
  *) ls -la "$crictl_out" "$out" "$etcd_out" ;;
esac
