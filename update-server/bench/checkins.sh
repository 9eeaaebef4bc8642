#!/usr/bin/env bash
# Check-in and download benchmark: starts a release nightlatch-server on a
# fresh data directory (SQLite, or PostgreSQL from .ci/services), publishes a
# 1 MiB firmware envelope, and runs nightlatch-loadgen against it over
# loopback. Prints check-ins/s, p50/p99 latency, metadata requests/s and
# target download throughput, then the server's own per-stage timings.
#
#   bash update-server/bench/checkins.sh [sqlite|postgres] [LOADGEN ARGS…]
#   e.g. bash update-server/bench/checkins.sh postgres --locks 20000 --concurrency 128
#
# PIN=1 pins the server to core 0 and the load generator to core 1
# (taskset), so the figures say which side is the bottleneck; by default
# both share every core. The server's CPU per check-in is printed from its
# own /proc counters.
#
# SERVER_LOG_FILTER sets the server's log filter (default warn, e.g.
# "warn,update_server::server=debug" for why connections end);
# SERVER_LOG_KEEP=FILE keeps its log.
#
# PERF=1 profiles the server (`perf record -g`) during the load generator's
# run and prints the top of the report; PERF_KEEP=FILE keeps perf.data.
#
# Needs `bash .ci/setup` for postgres. Uses port 18181 and a temp directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
backend=${1:-sqlite}
shift || true
cargo build -q --release -p update-server --bins
cargo build -q --release -p signing-tools --bin nightlatch-sign
dir=$(mktemp -d)
port=18181
db_args=()
if [ "$backend" = postgres ]; then
  bash .ci/services start >/dev/null
  db="bench_$$"
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)/psql
  run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  run "$psql_bin" -q -h 127.0.0.1 -p 55432 -U nightlatch -d postgres -c "CREATE DATABASE $db"
  db_args=(--database-url "postgres://nightlatch@127.0.0.1:55432/$db")
fi
# One load generator on one address stands for a whole fleet: lift the
# per-client budgets (the connection loop and timeouts stay as shipped).
cat >"$dir/server.toml" <<'TOML'
[http]
max_connections_per_client = 4096
public_rate = 10000000
public_burst = 10000000
refusal_rate = 10000000
refusal_burst = 10000000
TOML
server_cpu=() loadgen_cpu=()
if [ "${PIN:-0}" = 1 ]; then
  server_cpu=(taskset -c 0) loadgen_cpu=(taskset -c 1)
fi
NIGHTLATCH_LOG=${SERVER_LOG_FILTER:-warn} "${server_cpu[@]}" target/release/nightlatch-server --data-dir "$dir/data" --listen "127.0.0.1:$port" "${db_args[@]}" --config "$dir/server.toml" \
  >"$dir/server.log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ "$backend" = postgres ]; then
    run "$psql_bin" -q -h 127.0.0.1 -p 55432 -U nightlatch -d postgres -c "DROP DATABASE IF EXISTS $db" || true
  fi
  if [ -n "${SERVER_LOG_KEEP:-}" ]; then cp "$dir/server.log" "$SERVER_LOG_KEEP"; fi
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
head -c 1048576 /dev/urandom >"$dir/fw.bin"
target/release/nightlatch-sign keygen --unencrypted "$dir/release" >/dev/null 2>&1
target/release/nightlatch-sign sign --key "$dir/release.key" --model nl-lock-v2 --version 1.0.0 --counter 1 \
  "$dir/fw.bin" -o "$dir/fw.nlfw" >/dev/null
NIGHTLATCH_TOKEN=$(cat "$dir/data/admin-token") target/release/nightlatch-sign publish \
  --server "http://127.0.0.1:$port" --key "$dir/data/keys/image/keys/targets.key" "$dir/fw.nlfw" >/dev/null
sha=$(sha256sum "$dir/fw.nlfw" | cut -c1-64)
if [ "${PIN:-0}" = 1 ]; then
  echo "== nightlatch-server on $backend, pinned to core 0; load generator pinned to core 1"
else
  echo "== nightlatch-server on $backend, $(nproc) cores shared with the load generator"
fi
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
cpu0=$(ticks)
if [ -n "${PERF:-}" ]; then
  perf record -q ${PERF_CG:--g} -F 499 -p "$server" -o "$dir/perf.data" >/dev/null 2>&1 &
  perfpid=$!
fi
"${loadgen_cpu[@]}" target/release/nightlatch-loadgen --server "http://127.0.0.1:$port" --token-file "$dir/data/admin-token" \
  --download "/repo/targets/nl-lock-v2/$sha.1.0.0.nlfw" --server-pid "$server" "$@"
cpu1=$(ticks)
if [ -n "${PERF:-}" ]; then
  kill -INT "$perfpid" 2>/dev/null || true
  wait "$perfpid" 2>/dev/null || true
  if [ -n "${PERF_KEEP:-}" ]; then cp "$dir/perf.data" "$PERF_KEEP"; fi
  echo "== server profile (self time, top 40)"
  { perf report -i "$dir/perf.data" --no-children --sort dso,sym -g none --stdio 2>/dev/null |
    grep -v '^#' | grep '%' | head -40; } || true
fi
checkins=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^nightlatch_checkin_batch_size_sum/ {print $2}')
hz=$(getconf CLK_TCK)
awk -v t="$((cpu1 - cpu0))" -v hz="$hz" -v n="$checkins" \
  'BEGIN { if (n > 0) printf "server CPU: %.1f s for %d check-ins and downloads, %.0f us per check-in (upper bound: downloads included)\n", t / hz, n, t / hz / n * 1e6 }'
echo "== server-side time per batch stage (seconds, all batches) and batch sizes"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^nightlatch_(checkin_(stage_seconds_sum|batch_size_(sum|count))|http_refused)'
