#!/usr/bin/env python3
"""The UI benchmark's data, written straight into an MLflow SQLite database that MLflow's own
server created (MLflow's own API is the slow way in for 10k runs and a million points, and
what is measured here is the UIs, not loading): one experiment `ui-bench` of RUNS runs (10 metrics, 10 params, 5 tags each, `env` among
them) and one more run, `long-run`, whose `loss` has POINTS points with a spike in the middle.
plumb then reads the same database with `plumb import`, so both UIs show identical data.

    python3 bench/ui_seed.py mlflow.db 10000 1000000   # prints {"experiment_id", "long_run_id"}
"""
import json
import math
import sqlite3
import sys
import uuid

T0 = 1_700_000_000_000


def main(path, runs, points):
    db = sqlite3.connect(path)
    cur = db.cursor()
    cur.execute("SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments")
    exp_id = cur.fetchone()[0]
    art = f"mlflow-artifacts:/{exp_id}"
    cur.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)"
        " VALUES (?, 'ui-bench', ?, 'active', ?, ?)",
        (exp_id, art, T0, T0),
    )

    def run(name, i):
        rid = uuid.UUID(int=(exp_id << 64) + i).hex
        start = T0 + i * 60_000
        cur.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
            " end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)"
            " VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            (rid, name, start, start + 30_000 + i % 600_000, f"{art}/{rid}/artifacts", exp_id),
        )
        return rid, start

    latest, params, tags = [], [], []
    for i in range(runs):
        rid, start = run(f"run-{i:05d}", i)
        for m in range(10):
            v = ((i * 7919 + m * 104_729) % 10_000) / 10_000
            latest.append((f"m{m}", v, start, 0, 0, rid))
        for p in range(10):
            params.append((f"p{p}", f"v{(i + p) % 10}", rid))
        tags += [
            ("mlflow.runName", f"run-{i:05d}", rid),
            ("mlflow.user", "bench", rid),
            ("env", "production" if i % 4 == 0 else "training", rid),
            ("team", f"team-{i % 3}", rid),
            ("model", f"model-{i % 7}", rid),
        ]
    cur.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest)
    cur.executemany(
        "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
        [(k, v, ts, step, nan, rid) for (k, v, ts, step, nan, rid) in latest],
    )
    cur.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
    cur.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)

    long_id, start = run("long-run", runs)
    cur.execute("INSERT INTO tags (key, value, run_uuid) VALUES ('mlflow.runName', 'long-run', ?)", (long_id,))

    def loss(s):
        v = 2.0 * math.exp(-s / 200_000) + 0.05 * math.sin(s / 500)
        return 50.0 if s == points // 2 else v

    batch = []
    for s in range(points):
        batch.append(("loss", loss(s), start + s, s, 0, long_id))
        if len(batch) == 100_000:
            cur.executemany("INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", batch)
            batch = []
    if batch:
        cur.executemany("INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", batch)
    last = points - 1
    cur.execute(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES ('loss', ?, ?, ?, 0, ?)",
        (loss(last), start + last, last, long_id),
    )
    db.commit()
    print(json.dumps({"experiment_id": str(exp_id), "long_run_id": long_id}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
