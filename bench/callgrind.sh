#!/usr/bin/env bash
# Instructions per request of the harness's search (100k runs), counted by valgrind's callgrind:
# repeatable to a fraction of a percent on a shared host where wall-clock timings of the same
# request vary by +-30%. Loads the experiment first if the database does not exist yet (about
# two minutes), then counts the server answering 1 and 1+N searches and prints the difference / N.
#
#   bash bench/callgrind.sh [plumb binary] [database file] [N]
#   defaults: target/release/plumb, target/bench-callgrind/search.db, 4
#
# Compare two builds on the same database: run it once per binary. `callgrind_annotate
# --inclusive=yes target/bench-callgrind/cg.*` shows where the instructions go.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/plumb}")
db=${2:-target/bench-callgrind/search.db}
n=${3:-4}
port=${PLUMB_CALLGRIND_PORT:-5097}
work=$(dirname "$db")
mkdir -p "$work"
db=$(realpath "$db")
url=http://127.0.0.1:$port
server_pid=

stop() {
  if [ -n "$server_pid" ]; then
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop EXIT

wait_ready() {
  for _ in $(seq 1 600); do
    curl -sf "$url/health" >/dev/null && return 0
    sleep 0.2
  done
  echo "server did not answer /health" >&2
  exit 1
}

if [ ! -f "$db" ]; then
  cargo build --release --locked -p plumb-bench >/dev/null
  "$bin" server --port "$port" --backend-store-uri "sqlite:///$db" \
    --artifacts-destination "$work/artifacts" >"$work/load.log" 2>&1 &
  server_pid=$!
  wait_ready
  target/release/plumb-bench --url "$url" search --runs 100000 --requests 1 >"$work/load.json"
  stop
fi

experiment=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT MAX(experiment_id) FROM experiments WHERE name LIKE 'bench-search-%'\").fetchone()[0])" "$db")
body="{\"experiment_ids\":[\"$experiment\"],\"filter\":\"metrics.m0 > 0.5 and params.p0 = 'v1'\",\"order_by\":[\"metrics.m1 DESC\"],\"max_results\":1000}"

count() {
  local searches=$1
  rm -f "$work"/cg.*
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bin" server --port "$port" \
    --backend-store-uri "sqlite:///$db" --artifacts-destination "$work/artifacts" \
    >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_ready
  for _ in $(seq 1 "$searches"); do
    curl -sf -o /dev/null "$url/api/2.0/mlflow/runs/search" -H 'content-type: application/json' -d "$body"
  done
  stop
  grep -h '^summary:' "$work"/cg.* | awk '{print $2}'
}

one=$(count 1)
more=$(count $((n + 1)))
echo "instructions per search: $(( (more - one) / n )) (server answering 1 search: $one, $((n + 1)) searches: $more)"
