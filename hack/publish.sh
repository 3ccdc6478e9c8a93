#!/usr/bin/env bash
# Publishes a build made by hack/build.sh where `provision generate --provision-source` can
# point, and prints the exact --provision-source / --provision-sha256 flags:
#   hack/publish.sh gs://BUCKET/PREFIX [OUT_DIR]   upload with Google's Go client (ADC credentials;
#                                                  STORAGE_EMULATOR_HOST for an emulator)
#   hack/publish.sh local [ADDR] [OUT_DIR]         serve OUT_DIR on loopback (default 127.0.0.1:8080)
#                                                  until interrupted
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: hack/publish.sh gs://BUCKET/PREFIX|local [ADDR] [OUT_DIR]}
case "$dest" in
  gs://*)
    out=$(cd "${2:-$root/_output}" && pwd)
    cd "$root/hack/publish"
    exec go run . -dir "$out" -dest "$dest"
    ;;
  local)
    addr=${2:-127.0.0.1:8080}
    out=${3:-$root/_output}
    cd "$root"
    exec go run ./hack/serve -dir "$out" -addr "$addr" ${PID_FILE:+-pid-file "$PID_FILE"}
    ;;
  *)
    echo "publish: destination must be gs://BUCKET/PREFIX or local, got '$dest'" >&2
    exit 2
    ;;
esac
