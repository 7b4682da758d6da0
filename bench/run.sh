#!/usr/bin/env bash
# The benchmark harness (see bench/run.py). Full run: `bash bench/run.sh`; CI: `--smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p plumb -p plumb-bench
if [ "${1:-}" != "--smoke" ]; then
  # The peers, from PyPI: MLflow's server and FastTrackML (its `fml` binary ships in the wheel).
  if [ ! -x .venvs/bench/bin/fml ] || [ ! -x .venvs/bench/bin/mlflow ] \
     || ! .venvs/bench/bin/python -c "import psycopg2" 2>/dev/null; then
    python3 -m venv .venvs/bench
    .venvs/bench/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
    .venvs/bench/bin/pip install --quiet --disable-pip-version-check --no-deps fasttrackml==0.6.0
  fi
fi
exec python3 bench/run.py "$@"
