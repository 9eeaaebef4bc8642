#!/usr/bin/env bash
# Metadata and target serving benchmark, against nginx serving the very same
# bytes in the same run: starts a release nightlatch-server on a fresh data
# directory (SQLite, local blobs), publishes a 1 MiB firmware envelope, copies
# what the server serves into a directory nginx serves, and runs wrk against
# both. Prints requests/s for `timestamp.json` (the file every lock polls),
# `N.targets.json` and `root.json`, the ratio to nginx, and 1 MiB target
# downloads in GiB/s.
#
#   bash update-server/bench/metadata.sh [SECONDS]
#   PERF=1 bash update-server/bench/metadata.sh   # also profile the server
#
# With PERF=1 the server is profiled (`perf record -g`) while it serves
# `N.targets.json` to the pinned wrk, and the top of `perf report` is printed.
#
# Two runs of each: "shared", wrk and the server on both cores (what one
# machine does when it also generates the load), and "pinned", wrk on core 1
# and the server (or nginx) on core 0 (which side is the bottleneck). Needs
# wrk and nginx (`apt-get install wrk nginx-light`). Uses ports 18182/18183.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk nginx-light" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || { echo "nginx is not installed: apt-get install wrk nginx-light" >&2; exit 1; }
# NIGHTLATCH_SERVER_BIN: another build to measure (e.g. an older commit's).
server_bin=${NIGHTLATCH_SERVER_BIN:-target/release/nightlatch-server}
[ -n "${NIGHTLATCH_SERVER_BIN:-}" ] || cargo build -q --release -p update-server --bin nightlatch-server
cargo build -q --release -p signing-tools --bin nightlatch-sign
dir=$(mktemp -d)
port=18182
nport=18183
cat >"$dir/server.toml" <<'TOML'
[http]
max_connections_per_client = 4096
public_rate = 10000000
public_burst = 10000000
refusal_rate = 10000000
refusal_burst = 10000000
TOML
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -f "$dir/nginx/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
start_server() { # $1: taskset cpu list or ""
  local pre=()
  [ -n "$1" ] && pre=(taskset -c "$1")
  NIGHTLATCH_LOG=warn "${pre[@]}" "$server_bin" --data-dir "$dir/data" \
    --listen "127.0.0.1:$port" --config "$dir/server.toml" >>"$dir/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.2; done
  echo "server did not start" >&2; cat "$dir/server.log" >&2; exit 1
}
stop_server() { kill -TERM "$server"; wait "$server" 2>/dev/null || true; }
start_nginx() { # $1: worker_cpu_affinity line or ""
  mkdir -p "$dir/nginx"
  cat >"$dir/nginx/nginx.conf" <<NGINX
worker_processes ${2:-auto};
$1
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  etag on;
  types { application/json json; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nport;
    root $dir/www;
  }
}
NGINX
  "$nginx_bin" -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
  for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$nport/repo/metadata/timestamp.json" && return; sleep 0.1; done
  echo "nginx did not start" >&2; cat "$dir/nginx/error.log" >&2; exit 1
}
stop_nginx() { kill -QUIT "$(cat "$dir/nginx/nginx.pid")"; sleep 0.5; }

start_server ""
head -c 1048576 /dev/urandom >"$dir/fw.bin"
target/release/nightlatch-sign keygen --unencrypted "$dir/release" >/dev/null 2>&1
target/release/nightlatch-sign sign --key "$dir/release.key" --model nl-lock-v2 --version 1.0.0 --counter 1 \
  "$dir/fw.bin" -o "$dir/fw.nlfw" >/dev/null
NIGHTLATCH_TOKEN=$(cat "$dir/data/admin-token") target/release/nightlatch-sign publish \
  --server "http://127.0.0.1:$port" --key "$dir/data/keys/image/keys/targets.key" "$dir/fw.nlfw" >/dev/null
sha=$(sha256sum "$dir/fw.nlfw" | cut -c1-64)
meta_version() { # $1 file, $2 role listed in it
  curl -sf "http://127.0.0.1:$port/repo/metadata/$1" |
    python3 -c "import json, sys; print(json.load(sys.stdin)['signed']['meta']['$2']['version'])"
}
snap_v=$(meta_version timestamp.json snapshot.json)
targets_v=$(meta_version "$snap_v.snapshot.json" targets.json)
# The same bytes for nginx.
mkdir -p "$dir/www/repo/metadata" "$dir/www/repo/targets/nl-lock-v2"
for f in timestamp.json root.json "${targets_v}.targets.json"; do
  curl -sf "http://127.0.0.1:$port/repo/metadata/$f" -o "$dir/www/repo/metadata/$f"
done
cp "$dir/fw.nlfw" "$dir/www/repo/targets/nl-lock-v2/$sha.1.0.0.nlfw"
# nginx's workers run as an unprivileged user when started as root.
chmod 755 "$dir"
chmod -R a+rX "$dir/www"
target="/repo/targets/nl-lock-v2/$sha.1.0.0.nlfw"
stop_server

rps() { # $1 cpu list for wrk or "", $2 url, $3 connections
  local pre=()
  [ -n "$1" ] && pre=(taskset -c "$1")
  "${pre[@]}" wrk -t1 -c"${3:-64}" -d"${secs}s" "$2" | awk '/Requests\/sec/ {print $2} /Transfer\/sec/ {print $2}' | paste -sd' '
}
gib() { # "123.45MB" -> GiB/s
  awk -v t="$1" 'BEGIN { n = t + 0; u = t; gsub(/[0-9.]/, "", u);
    f = (u == "GB") ? 1 : (u == "MB") ? 1/1024 : (u == "KB") ? 1/1048576 : 1/1073741824;
    printf "%.2f", n * f }'
}
echo "== $(nproc) cores; wrk -t1 -c64 -d${secs}s; nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///')"
printf '%-8s %-22s %12s %12s %7s\n' run file nightlatch nginx ratio
for mode in shared pinned; do
  if [ "$mode" = pinned ]; then scpu=0; wcpu=1; aff="worker_cpu_affinity 01;"; nw=1; else scpu=""; wcpu=""; aff=""; nw=auto; fi
  start_server "$scpu"
  start_nginx "$aff" "$nw"
  for f in timestamp.json "${targets_v}.targets.json" root.json; do
    ours=$(rps "$wcpu" "http://127.0.0.1:$port/repo/metadata/$f" | cut -d' ' -f1)
    theirs=$(rps "$wcpu" "http://127.0.0.1:$nport/repo/metadata/$f" | cut -d' ' -f1)
    printf '%-8s %-22s %12s %12s %6.2fx\n' "$mode" "$f" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN{print a/b}')"
  done
  ours=$(rps "$wcpu" "http://127.0.0.1:$port$target" 8 | cut -d' ' -f2)
  theirs=$(rps "$wcpu" "http://127.0.0.1:$nport$target" 8 | cut -d' ' -f2)
  printf '%-8s %-22s %10s/s %10s/s (GiB/s, 8 connections)\n' "$mode" "1 MiB target" "$(gib "$ours")" "$(gib "$theirs")"
  if [ "$mode" = pinned ] && [ -n "${PERF:-}" ]; then
    perf record -q -g -p "$server" -o "$dir/perf.data" -- sleep "$secs" >/dev/null 2>&1 &
    perfpid=$!
    rps "$wcpu" "http://127.0.0.1:$port/repo/metadata/${targets_v}.targets.json" >/dev/null
    wait "$perfpid" || true
    echo "== where the server's time goes (N.targets.json, pinned; self time, top entries)"
    perf report -i "$dir/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -25
  fi
  stop_nginx
  stop_server
done
