#!/usr/bin/env bash
# The journal's cost: accepted background runs per second with the run journal on (SQLite, WAL,
# synchronous=FULL, group commit) against the same server with it off (-journal=false), at 16
# connections, against a hook that runs /bin/true in the background. Prints both rates and
# their ratio (target: at least 0.80).
#
# Usage: bench/journal.sh [SECONDS] [ROUNDS]     (defaults: 10 seconds, 2 rounds, best kept)
# Needs wrk. Builds the release binary (CARGO_TARGET_DIR is honoured) and copies it aside, so a
# concurrent build cannot swap it mid-run. Traffic goes to 127.0.0.1 only.
set -euo pipefail

seconds=${1:-10}
rounds=${2:-2}
connections=16
root=$(cd "$(dirname "$0")/.." && pwd)

command -v wrk >/dev/null || { echo "bench/journal.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
# Cargo's last message names the built executable (its path depends on the configured target).
binary=$(cd "$root" && cargo build --release --bin hookwire --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cp "$binary" "$work/hookwire"
cat >"$work/hooks.yaml" <<'HOOKS'
- id: bench
  execute-command: /bin/true
  response-message: accepted
HOOKS

# One measurement: starts a server with -journal=$1, runs wrk, prints requests per second.
measure() {
    local journal=$1 port=$((20000 + RANDOM % 20000))
    rm -rf "$work/state"
    "$work/hookwire" -hooks "$work/hooks.yaml" -ip 127.0.0.1 -port "$port" \
        -state-dir "$work/state" -journal="$journal" >"$work/log" 2>&1 &
    server=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
        sleep 0.05
    done
    wrk -t2 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/hooks/bench" >"$work/wrk"
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    if grep -q "Non-2xx" "$work/wrk"; then
        echo "journal=$journal: some requests were not accepted:" >&2
        cat "$work/wrk" >&2
        exit 1
    fi
    awk '/Requests\/sec/ {print $2}' "$work/wrk"
}

best_on=0 best_off=0
for round in $(seq "$rounds"); do
    off=$(measure false)
    on=$(measure true)
    echo "round $round: journal off ${off}/s, journal on ${on}/s"
    best_off=$(awk -v a="$best_off" -v b="$off" 'BEGIN {print (b > a) ? b : a}')
    best_on=$(awk -v a="$best_on" -v b="$on" 'BEGIN {print (b > a) ? b : a}')
done
awk -v on="$best_on" -v off="$best_off" -v c="$connections" 'BEGIN {
    printf "accepted background runs/s at %d connections: journal off %.0f, journal on %.0f, ratio %.2f\n",
        c, off, on, on / off
}'
