#!/usr/bin/env bash
# Builds containerd (containerd, containerd-shim-runc-v2, ctr) and runc from the Go module proxy
# into a cache outside the repository, packaged as the upstream release assets, for the
# end-to-end tests of the tarball runtime:
#   hack/build-containerd.sh [CONTAINERD_VERSION] [RUNC_VERSION]   (defaults v2.3.7, v1.3.7)
# Output (CACHE = $PROVISION_TEST_CACHE or /var/cache/provision-test):
#   $CACHE/containerd/VERSION/containerd-X.Y.Z-linux-amd64.tar.gz   (bin/ at the top, as upstream)
#   $CACHE/containerd/VERSION/containerd-X.Y.Z-linux-amd64.tar.gz.sha256sum   ("HASH  NAME")
#   $CACHE/runc/VERSION/runc.amd64 and runc.sha256sum   ("HASH  runc.amd64", upstream lists every arch)
# containerd builds with CGO_ENABLED=0 (upstream's release builds the shim that way; without cgo
# only the btrfs snapshotter is left out). runc needs cgo (libcontainer/nsenter) and is linked
# static-pie with libseccomp as upstream's `make static` does: it needs gcc, libc6-dev and
# libseccomp-dev. Re-runs check the cached files (versions, checksums) and rebuild only what is
# missing or wrong.
set -euo pipefail
containerd_version=${1:-v2.3.7}
runc_version=${2:-v1.3.7}
cache=${PROVISION_TEST_CACHE:-/var/cache/provision-test}
arch=amd64
cd_out="$cache/containerd/$containerd_version"
runc_out="$cache/runc/$runc_version"
cd_name="containerd-${containerd_version#v}-linux-$arch.tar.gz"
mkdir -p "$cd_out" "$runc_out"

SCRIPT=build-containerd
# shellcheck source=hack/lib-modsrc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-modsrc.sh"

# sums_ok DIR FILE: FILE.sha256sum (or runc.sha256sum) in DIR verifies.
sums_ok() { (cd "$1" && sha256sum --quiet -c "$2" >/dev/null 2>&1); }

containerd_ok() {
  local want="containerd github.com/containerd/containerd/v2 $containerd_version" b
  [ -f "$cd_out/$cd_name" ] && sums_ok "$cd_out" "$cd_name.sha256sum" || return 1
  for b in containerd containerd-shim-runc-v2 ctr; do
    [ -x "$cd_out/bin/$b" ] || return 1
  done
  reports "$cd_out/bin/containerd" --version
}

runc_ok() {
  local want="runc version ${runc_version#v}"
  [ -x "$runc_out/runc.$arch" ] && sums_ok "$runc_out" runc.sha256sum && reports "$runc_out/runc.$arch" --version
}

# pack DIR OUT: a reproducible gzipped tarball of DIR's bin/ (names bin/..., as upstream).
pack() {
  tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu -cf - bin | gzip -n -9 >"$2"
}

if containerd_ok; then
  echo "containerd $containerd_version: cached in $cd_out"
else
  t=$(date +%s%N)
  module_src "github.com/containerd/containerd/v2@$containerd_version"
  rm -rf "${cd_out:?}/bin" "${cd_out:?}/$cd_name" "${cd_out:?}/$cd_name.sha256sum"
  pkg=github.com/containerd/containerd/v2
  ldflags="-s -w -X $pkg/version.Version=$containerd_version -X $pkg/version.Revision=go-module-proxy -X $pkg/version.Package=$pkg"
  (cd "$src" && rm -rf vendor &&
    CGO_ENABLED=0 go build -trimpath -tags urfave_cli_no_docs -ldflags "$ldflags" -o "$cd_out/bin/" ./cmd/containerd ./cmd/ctr &&
    CGO_ENABLED=0 go build -trimpath -tags "urfave_cli_no_docs no_grpc" -ldflags "$ldflags" -o "$cd_out/bin/" ./cmd/containerd-shim-runc-v2)
  pack "$cd_out" "$cd_out/$cd_name"
  (cd "$cd_out" && sha256sum "$cd_name" >"$cd_name.sha256sum")
  containerd_ok || { echo "build-containerd: containerd $containerd_version build does not check out" >&2; exit 1; }
  echo "containerd $containerd_version: built in $(ms "$t") ms"
fi

if runc_ok; then
  echo "runc $runc_version: cached in $runc_out"
else
  t=$(date +%s%N)
  module_src "github.com/opencontainers/runc@$runc_version"
  rm -f "$runc_out/runc.$arch" "$runc_out/runc.sha256sum"
  # The module's vendor/ holds only modules.txt: build from the module cache instead.
  (cd "$src" && rm -rf vendor &&
    CGO_ENABLED=1 go build -trimpath -buildmode=pie -tags "seccomp urfave_cli_no_docs netgo osusergo" \
      -ldflags "-s -w -X main.gitCommit=go-module-proxy -linkmode external -extldflags -static-pie" -o "$runc_out/runc.$arch" .)
  (cd "$runc_out" && sha256sum "runc.$arch" >runc.sha256sum)
  runc_ok || { echo "build-containerd: runc $runc_version build does not check out" >&2; exit 1; }
  echo "runc $runc_version: built in $(ms "$t") ms"
fi
ls -la "$cd_out" "$cd_out/bin" "$runc_out"
