#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run calls exactly this).
# Lints, the Rust suites (unit, conformance, HTTP + snapshots), then the official MLflow
# clients (2.22.4 and 3.17.2, installed here into .venvs/) against the real plumb binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export INSTA_UPDATE=no   # a stale or missing snapshot fails instead of being written

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "rust tests (nextest)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "benchmark harness smoke run (plumb only, seconds; the full run is by hand)"
bash bench/run.sh --smoke

# Python venvs with the pinned official clients, rebuilt when their requirements change.
make_venv() {
  local name=$1 req=$root/tests/compat/requirements-$1.txt dir=$root/.venvs/$1
  local stamp; stamp=$(sha256sum "$req" | cut -c1-16)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    step "creating venv $name"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$stamp" > "$dir/.stamp"
  fi
}
make_venv mlflow2
make_venv mlflow3

export PLUMB_BIN=$root/target/debug/plumb
status=0
for v in mlflow3 mlflow2; do
  step "official client compatibility: $v"
  "$root/.venvs/$v/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/compat" || status=1
done
exit $status
