#!/usr/bin/env bash
# Wall time of `elector run --min-hold 0s -- true` against redis, etcd and PostgreSQL, next
# to the native equivalents the issues compare with: a redis-cli SET NX + Lua
# compare-and-delete, `etcdctl lock NAME -- true`, and a `psql` advisory-lock one-liner
# followed by `true`. Starts its own servers on free loopback ports (PostgreSQL as the user
# nobody, since it refuses to run as root; skipped if its Debian package is missing).
#
#   cargo build --release -p elector && bash cli/bench/run-latency.sh [ITERATIONS]
#
# ELECTOR=path overrides the binary (default target/release/elector).
set -euo pipefail
N=${1:-50}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ELECTOR=${ELECTOR:-$ROOT/target/release/elector}
DIR=$(mktemp -d)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RPORT=$(free_port); CPORT=$(free_port); PPORT=$(free_port); GPORT=$(free_port)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
cleanup() {
  [ -n "${PG_PID:-}" ] && kill -INT "$PG_PID" 2>/dev/null || true
  [ -f "$DIR/redis.pid" ] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
  [ -n "${ETCD_PID:-}" ] && kill "$ETCD_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize yes \
  --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
etcd --name n1 --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$CPORT" --advertise-client-urls "http://127.0.0.1:$CPORT" \
  --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
  --initial-cluster "n1=http://127.0.0.1:$PPORT" \
  --heartbeat-interval=10 --election-timeout=100 --log-level=error >"$DIR/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$CPORT" --command-timeout=1s endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done

# Runs "$@" N times; prints the median and mean wall time in ms.
measure() {
  local label=$1; shift
  local t=()
  for _ in $(seq "$N"); do
    local s e
    # $EPOCHREALTIME (bash 5) instead of $(date ...): two forks per sample would add the
    # same ~2 ms to every case and pull every ratio towards 1.
    s=${EPOCHREALTIME/[.,]/}
    "$@" >/dev/null 2>&1
    e=${EPOCHREALTIME/[.,]/}
    t+=($(( e - s )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk -v label="$label" '
    { v[NR] = $1; sum += $1 }
    END { printf "%-44s median %6.2f ms   mean %6.2f ms   (n=%d)\n", label, v[int((NR+1)/2)]/1000, sum/NR/1000, NR }'
}

redis_native() {
  redis-cli -p "$RPORT" SET lock:bench tok NX PX 10000 >/dev/null
  true
  redis-cli -p "$RPORT" EVAL "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end" 1 lock:bench tok >/dev/null
}

export RUST_LOG=warn
measure "redis: redis-cli SET NX + Lua delete" redis_native
measure "redis: elector run --min-hold 0s -- true" \
  "$ELECTOR" --backend redis --set "backend.redis.url=\"redis://127.0.0.1:$RPORT\"" --node-id bench \
  run -e bench --min-hold 0s -- true
measure "etcd:  etcdctl lock bench -- true" \
  env ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$CPORT" lock bench -- true
measure "etcd:  elector run --min-hold 0s -- true" \
  "$ELECTOR" --backend etcd --set "backend.etcd.endpoints=[\"http://127.0.0.1:$CPORT\"]" --node-id bench \
  run -e bench --min-hold 0s -- true

if [ -n "$PGBIN" ]; then
  mkdir -p "$DIR/pg" && chown nobody "$DIR" "$DIR/pg" && chmod 755 "$DIR"
  drop="setpriv --reuid=nobody --regid=nogroup --clear-groups"
  $drop "$PGBIN/initdb" -D "$DIR/pg" -U postgres --auth=trust --no-sync --no-instructions >/dev/null
  $drop "$PGBIN/postgres" -D "$DIR/pg" -p "$GPORT" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$DIR/pg" >"$DIR/pg.log" 2>&1 &
  PG_PID=$!
  PGURL="postgres://postgres@127.0.0.1:$GPORT/postgres?sslmode=disable"
  for _ in $(seq 200); do "$PGBIN/psql" "$PGURL" -Atc 'select 1' >/dev/null 2>&1 && break; sleep 0.05; done
  pg_native() {
    "$PGBIN/psql" "$PGURL" -Atc "select pg_try_advisory_lock(hashtext('bench'))" >/dev/null
    true
  }
  measure "postgres: psql pg_try_advisory_lock; true" pg_native
  measure "postgres: elector run --min-hold 0s -- true" \
    "$ELECTOR" --backend postgres --set "backend.postgres.url=\"$PGURL\"" --node-id bench \
    run -e bench --min-hold 0s -- true
else
  echo "postgres: skipped (no /usr/lib/postgresql/*/bin; scripts/install-deps.sh installs it)"
fi
