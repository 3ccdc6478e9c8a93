#!/usr/bin/env bash
# Generates the bootstrap provider's deepcopy functions, CRDs and RBAC role with
# controller-gen (pinned), from the markers in api/ and internal/controller/.
#   capi/hack/generate.sh           rewrite the checked-in files
#   capi/hack/generate.sh --verify  regenerate into a temp copy and fail on any difference (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
CONTROLLER_GEN="go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0"
# hack/test.sh checks every Go file with this goimports: the generated one too.
GOIMPORTS="go run golang.org/x/tools/cmd/goimports@v0.40.0"

gen() { # gen DIR: writes the generated files under DIR (a copy of capi/ or capi/ itself)
  (cd "$1" && $CONTROLLER_GEN \
    object paths=./api/... \
    crd paths=./api/... output:crd:artifacts:config=config/crd/bases \
    rbac:roleName=provision-bootstrap-manager paths=./internal/controller/... output:rbac:artifacts:config=config/rbac &&
    $GOIMPORTS -local github.com/provision-dev/provision -w api/v1alpha1/zz_generated.deepcopy.go)
}

if [ "${1:-}" != "--verify" ]; then
  gen .
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A copy of the repository's files (capi/ replaces ../ with the main module), without the generated ones.
(cd .. && git ls-files -co --exclude-standard -z | tar --null -T - -cf - ) | tar -C "$tmp" -xf -
rm -rf "$tmp/capi/config/crd/bases" "$tmp/capi/config/rbac/role.yaml" "$tmp/capi/api/v1alpha1/zz_generated.deepcopy.go"
mkdir -p "$tmp/capi/config/crd/bases"
gen "$tmp/capi"
status=0
for f in api/v1alpha1/zz_generated.deepcopy.go config/rbac/role.yaml config/crd/bases/*.yaml; do
  diff -u "$f" "$tmp/capi/$f" || status=1
done
for f in "$tmp"/capi/config/crd/bases/*.yaml; do
  [ -e "config/crd/bases/$(basename "$f")" ] || { echo "not checked in: config/crd/bases/$(basename "$f")" >&2; status=1; }
done
[ "$status" = 0 ] || echo "generated files differ: run capi/hack/generate.sh" >&2
exit "$status"
