#!/usr/bin/env bash
# The development loop in one command:
#   1. build provision (hack/build.sh; linux/amd64 only unless ARCHES is set),
#   2. publish the build on loopback (hack/serve, in the background, PID in OUT/.dev/serve.pid),
#   3. generate userdata for an example pointing at the served binary: OUT/user-data.
#
# Usage: hack/dev.sh [GENERATE_CONFIG]   (default examples/openstack-ubuntu/generate.yaml)
# Environment:
#   OUT_DIR      build and output directory (default _output)
#   ARCHES       architectures to build (default amd64); userdata uses the first
#   ADDR         listen address of the server (default 127.0.0.1:8080; 127.0.0.1:0 = any free port)
#   SOURCE_BASE  base URL written into the userdata instead of the served one, for a VM
#                that reaches the host's loopback another way (e.g. QEMU user networking:
#                http://10.0.2.2:8080)
#   DEV_STOP=1   stop the server when the script exits (tests, CI)
#
# The server is left running (a machine booted with the userdata fetches provision from it)
# and the script prints how to stop it: kill "$(cat OUT/.dev/serve.pid)". A re-run first stops
# the server recorded there, by that PID only. (hack/serve serves no dot-directory.)
set -euo pipefail
cd "$(dirname "$0")/.."

config=${1:-examples/openstack-ubuntu/generate.yaml}
out=${OUT_DIR:-_output}
arches=${ARCHES:-amd64}
addr=${ADDR:-127.0.0.1:8080}
arch=${arches%% *}
dev="$out/.dev"
pidfile="$dev/serve.pid"
log="$dev/serve.log"

[ -f "$config" ] || { echo "dev: no generate config at $config" >&2; exit 2; }
mkdir -p "$out" "$dev"

# A previous run's server holds the port: stop it by its recorded PID, if it is still ours.
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null || true)" = "provision-serve" ]; then
    echo "dev: stopping the previous server (PID $old)"
    kill "$old" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "/proc/$old" ] || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
fi

echo "dev: building ($arches)"
ARCHES="$arches" bash hack/build.sh "$out"

bin="provision-linux-$arch"
sum=$(cut -d' ' -f1 "$out/$bin.sha256")

# The server is built once and run directly, so $! is its PID (not go run's).
go build -o "$dev/provision-serve" ./hack/serve
rm -f "$log"
"$dev/provision-serve" -dir "$out" -addr "$addr" -pid-file "$pidfile" >"$log" 2>&1 &
server=$!
if [ "${DEV_STOP:-0}" = 1 ]; then
  trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$pidfile"' EXIT
fi

# Wait for "serving DIR at http://HOST:PORT" (the real port when ADDR ends in :0).
base=""
for _ in $(seq 100); do
  base=$(sed -n 's/^serving .* at \(http:\/\/[^ ]*\)$/\1/p' "$log" 2>/dev/null | head -n 1)
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || { echo "dev: the server exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "dev: the server did not start within 10s:" >&2; cat "$log" >&2; exit 1; }

# Prove the published bytes are the built ones before pointing userdata at them.
got=$(curl -fsS "$base/$bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$sum" ] || { echo "dev: $base/$bin has sha256 $got, the build $sum" >&2; exit 1; }

source_url="${SOURCE_BASE:-$base}/$bin"
echo "dev: generating $out/user-data from $config"
go run ./cmd/provision generate --config "$config" --arch "$arch" \
  --provision-source "$source_url" --provision-sha256 "$sum" --allow-http-source \
  -o "$out/user-data"

cat <<EOF

dev: ready
  binary:    $base/$bin (sha256 $sum)
  userdata:  $out/user-data (--provision-source $source_url)
  server:    PID $server, log $log
EOF
if [ "${DEV_STOP:-0}" = 1 ]; then
  echo "  (DEV_STOP=1: the server stops now)"
else
  echo "  stop it:   kill \"\$(cat $pidfile)\""
fi
