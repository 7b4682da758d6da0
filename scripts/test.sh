#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run calls exactly this).
# Lints, the Rust suites (unit, conformance on SQLite and PostgreSQL, HTTP + snapshots, the
# binary incl. replicas and database restarts), the web UI's bundle check and browser tests,
# then the official MLflow clients (2.22.4 and 3.17.2, installed here into .venvs/) against the
# real plumb binary, on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export INSTA_UPDATE=no   # a stale or missing snapshot fails instead of being written

step() { printf '\n==> %s\n' "$*"; }

# PostgreSQL: the machine's server (127.0.0.1:5432, user postgres, trust auth), started here when
# it is down. Every suite that uses it creates its own fresh databases and drops them after.
export PLUMB_TEST_POSTGRES_URL=${PLUMB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
step "PostgreSQL"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
fi
pg_isready -h 127.0.0.1 -p 5432

step "rustfmt"
cargo fmt --all -- --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

# Python venvs, rebuilt when their requirements change: the pinned official clients, and an
# S3-protocol server (moto) for the artifact-store tests.
make_venv() {
  local name=$1 req=$2 dir=$root/.venvs/$1
  # The requirements' hash and the venv's own path: a venv's scripts name their interpreter by
  # absolute path, so a moved checkout gets fresh venvs instead of broken `#!` lines.
  local stamp; stamp="$(sha256sum "$req" | cut -c1-16) $dir"
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    step "creating venv $name"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$stamp" > "$dir/.stamp"
  fi
}
make_venv mlflow2 "$root/tests/compat/requirements-mlflow2.txt"
make_venv mlflow3 "$root/tests/compat/requirements-mlflow3.txt"
make_venv s3 "$root/tests/s3/requirements.txt"
export PLUMB_TEST_MOTO_SERVER=$root/.venvs/s3/bin/moto_server

step "rust tests (nextest)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "benchmark harness smoke run (plumb and the do-nothing floor, seconds; the full run is by hand)"
bash bench/run.sh --smoke
bash bench/run.sh --smoke --backend postgres
bash bench/run.sh --smoke --monitoring
bash bench/run.sh --smoke --traces

export PLUMB_BIN=$root/target/debug/plumb
status=0

# The web UI: the committed bundle (crates/plumb-server/ui/, embedded in the binary) must be
# what its sources build to with the pinned lockfile; the browser tests drive Debian's Chromium
# (installed here when missing) with playwright-core against the real binary.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
step "web UI: the committed bundle is what its sources build to"
(cd ui && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && node build.mjs --check)
step "web UI: browser tests (Chromium from Debian's packages)"
if ! command -v chromium >/dev/null 2>&1; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 ||
    { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
fi
PLUMB_PYTHON=$root/.venvs/mlflow3/bin/python node --test "$root/ui/tests/" || status=1
step "web UI benchmark smoke run (300 runs, 20k points; the full run beside MLflow's UI is by hand)"
bash bench/run.sh --smoke --ui || status=1
for backend in sqlite postgres; do
  for v in mlflow3 mlflow2; do
    step "official client compatibility: $v on $backend"
    PLUMB_TEST_BACKEND=$backend "$root/.venvs/$v/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/compat" || status=1
  done
done
exit $status
