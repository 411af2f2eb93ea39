#!/usr/bin/env bash
# CPU an idle supervised `elector run` costs through its agent, on three raft agents with
# raft's defaults on loopback: the caller (`elector run`), its guard, the leading agent
# (raft's heartbeats for the election included: an election nobody campaigns in has no
# leader and costs nothing) and a following agent (which only answers heartbeats). Time on
# CPU comes from /proc/PID/task/*/schedstat (nanoseconds). Then, unless STRACE=0, system
# calls per second of the caller, its guard and the leading agent over 5 s (`strace -c
# -f`): a count that a busy machine does not blur.
#
#   cargo build --release -p elector && bash cli/bench/idle-cpu.sh [SECONDS]
#
# ELECTOR=path overrides the binary (default target/release/elector); a binary from before
# agent.socket existed (issue 14) is run without it.
set -euo pipefail
SECS=${1:-30}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ELECTOR=${ELECTOR:-$ROOT/target/release/elector}
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && cp -r "$DIR" "$KEEP"; rm -rf "$DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
has_socket=0
"$ELECTOR" --backend raft --set agent.socket=\"/x\" config >/dev/null 2>&1 && has_socket=1
ports=($(free_port) $(free_port) $(free_port))
apis=($(free_port) $(free_port) $(free_port))
for i in 0 1 2; do
  n=$((i + 1))
  {
    echo "node_id = \"n$n\""
    echo "[backend]"; echo 'kind = "raft"'
    echo "[backend.raft]"
    echo "listen = \"127.0.0.1:${ports[$i]}\""
    echo "data_dir = \"$DIR/data-n$n\""
    echo 'secret = "a-bench-secret-of-32-bytes-length"'
    echo "[backend.raft.peers]"
    for j in 0 1 2; do echo "n$((j + 1)) = \"127.0.0.1:${ports[$j]}\""; done
    echo "[agent]"
    echo "listen = \"127.0.0.1:${apis[$i]}\""
    [ "$has_socket" = 1 ] && echo "socket = \"$DIR/n$n.sock\""
    echo 'elections = ["job"]'
  } >"$DIR/n$n.toml"
  RUST_LOG=warn "$ELECTOR" --config "$DIR/n$n.toml" agent 2>"$DIR/agent-n$n.log" &
  PIDS+=($!)
done
AGENT1=${PIDS[0]}
for a in "${apis[@]}"; do
  until curl -sf "http://127.0.0.1:$a/health" >/dev/null; do sleep 0.1; done
done
cpu_ns() { # total time on CPU of every thread of $1, in ns
  local t=0 v
  for f in /proc/"$1"/task/*/schedstat; do read -r v _ <"$f" && t=$((t + v)); done
  echo "$t"
}
percent() { python3 -c "print(f'{$1 / ($SECS * 1e9) * 100:.3f}')"; }
AGENT2=${PIDS[1]}
RUST_LOG=warn "$ELECTOR" --config "$DIR/n1.toml" run -e job --supervise -- sleep 100000 2>"$DIR/run.log" &
RUN=$!
PIDS+=($RUN)
until curl -sf "http://127.0.0.1:${apis[0]}/v1/leader/job" >/dev/null; do sleep 0.1; done
sleep 3
GUARD=$(pgrep -P "$RUN" | head -1)
epoch() { curl -sf "http://127.0.0.1:${apis[0]}/v1/leader/job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"]["epoch"])' 2>/dev/null || echo none; }
e0=$(epoch)
a0=$(cpu_ns "$AGENT1"); r0=$(cpu_ns "$RUN"); g0=$(cpu_ns "$GUARD"); f0=$(cpu_ns "$AGENT2")
sleep "$SECS"
a1=$(cpu_ns "$AGENT1"); r1=$(cpu_ns "$RUN"); g1=$(cpu_ns "$GUARD"); f1=$(cpu_ns "$AGENT2")
e1=$(epoch)
if [ "$e0" != "$e1" ] || [ ! -d "/proc/$GUARD" ]; then
  # A loaded machine can make raft's 75 ms lease lapse: the child is restarted under a
  # new epoch, and the figures below mix two leaderships (the guard's is meaningless).
  echo "WARNING: the leadership changed during the measurement (epoch $e0 -> $e1); rerun on a quieter machine"
fi
held=$((a1 - a0))
echo "binary: $ELECTOR (hold protocol: $([ "$has_socket" = 1 ] && echo "socket, one connection" || echo "TCP, a request per renewal"))"
echo "over ${SECS}s, % of one core:"
echo "  elector run (caller)         $(percent $((r1 - r0)))"
echo "  its guard                    $(percent $((g1 - g0)))"
echo "  leading agent (n1)           $(percent "$held")"
echo "  following agent (n2)         $(percent $((f1 - f0)))"
if [ "${STRACE:-1}" != 0 ] && command -v strace >/dev/null; then
  calls() { # system calls per second of every thread of $1 over 5 s
    timeout -s INT 5 strace -c -f -p "$1" -o "$DIR/strace-$1" >/dev/null 2>&1 || true
    [ -n "${VERBOSE:-}" ] && cat "$DIR/strace-$1" >&2
    awk '$NF == "total" { print int($4 / 5) }' "$DIR/strace-$1"
  }
  echo "system calls per second (strace -c -f, 5 s each):"
  echo "  elector run (caller)         $(calls "$RUN")"
  echo "  its guard                    $(calls "$GUARD")"
  echo "  leading agent (n1)           $(calls "$AGENT1")"
fi
