#!/usr/bin/env python3
"""plumb's benchmark harness: starts plumb, MLflow 3.17.2's server and FastTrackML 0.6.0 on fresh
SQLite databases (or, with `--backend postgres`, fresh PostgreSQL databases on the machine's
server), runs the same workloads against each with the `plumb-bench` load generator, and writes
BENCHMARKS.md with the peers side by side (one table per backend).

    bash bench/run.sh                      # the full run on SQLite (by hand; tens of minutes)
    bash bench/run.sh --backend postgres   # the same on PostgreSQL
    bash bench/run.sh --smoke              # seconds, plumb only (CI runs this so the harness never rots)
    bash bench/run.sh --traces             # tracing: OTLP span ingest, trace search over 100k traces,
                                           # plumb and MLflow 3.17.2 through the same endpoints
    bash bench/run.sh --monitoring         # monitoring: event ingest, 1-hour window, alert lag,
                                           # beside MLflow logging the same events as log-batch
    bash bench/run.sh --ui                 # the web UI in headless Chromium: a 10k-run table and a
                                           # 1M-point chart, plumb's UI beside MLflow 3.17.2's
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "target", "release", "plumb-bench")
PLUMB = os.path.join(ROOT, "target", "release", "plumb")
VENV = os.path.join(ROOT, ".venvs", "bench")
PG_ADMIN = os.environ.get("PLUMB_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def psql(sql):
    subprocess.run(["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                   env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})


def fresh_database(name):
    """A new, empty PostgreSQL database on the bench server (dropped first if a run left one)."""
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants (MLflow forks workers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name, argv_for, workdir):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        start = time.monotonic()
        self.proc = subprocess.Popen(argv_for(self.port), cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = start + 180
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=2):
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {self.log.name}")
            time.sleep(0.005)
        self.startup_ms = (time.monotonic() - start) * 1000
        time.sleep(0.5)
        self.idle_rss_mib = tree_rss_kib(self.proc.pid) / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def loadgen(url, *args):
    out = subprocess.run([LOADGEN, "--url", url, *args], capture_output=True, text=True, timeout=7200)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-300:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def with_peak_rss(server, fn):
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_kib(server.proc.pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    try:
        result = fn()
    finally:
        stop.set()
        t.join()
    result["peak_rss_mib"] = peak[0] / 1024
    return result


def seed_script(url):
    py = os.path.join(VENV, "bin", "python")
    script = os.path.join(ROOT, "tests", "compat", "seed_script.py")
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([py, script], cwd=cwd, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "MLFLOW_TRACKING_URI": url})
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-300:]}
    return {"seconds": time.monotonic() - start}


def servers(smoke, backend):
    """name -> (argv for a port, PostgreSQL database to drop afterwards or None)."""
    bin_dir = os.path.join(VENV, "bin")
    pg = backend == "postgres"

    def db(name):
        return fresh_database(f"plumb_bench_{name}") if pg else None

    def plumb(port):
        uri = db("plumb") if pg else "sqlite:///plumb.db"
        return [PLUMB, "server", "--port", str(port), "--backend-store-uri", uri]

    peers = {"plumb": plumb}
    if not smoke:
        def mlflow(port):
            uri = db("mlflow").replace("postgres://", "postgresql+psycopg2://") if pg else "sqlite:///mlflow.db"
            return [os.path.join(bin_dir, "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                    "--backend-store-uri", uri]

        def fasttrackml(port):
            uri = db("fasttrackml") if pg else "sqlite://fml.db"
            return [os.path.join(bin_dir, "fml"), "server", "--listen-address", f"127.0.0.1:{port}",
                    "--database-uri", uri]

        peers["mlflow"] = mlflow
        peers["fasttrackml"] = fasttrackml
    if not pg:
        # Not a peer: the load generator's own do-nothing server (reads and parses each request,
        # stores nothing). The same write load against it is the ceiling of this machine.
        peers["floor"] = lambda port: [LOADGEN, "--url", f"http://127.0.0.1:{port}", "floor"]
    return peers


def plan(smoke, name):
    """(label, loadgen args). Slow peers get smaller data sets, and the table says so."""
    if name == "floor":
        return [p for p in plan(smoke, "plumb") if p[0].startswith("log-")]
    if smoke:
        return [
            ("log-metric c1", ["log-metric", "--connections", "1", "--seconds", "0.5"]),
            ("log-metric c8", ["log-metric", "--connections", "8", "--seconds", "0.5"]),
            ("log-batch c8", ["log-batch", "--connections", "8", "--seconds", "0.5"]),
            ("get-history", ["history", "--points", "2000", "--requests", "3"]),
            ("bulk-interval", ["bulk-interval", "--points", "5000", "--requests", "3"]),
            ("search-runs", ["search", "--runs", "200", "--requests", "3"]),
        ]
    slow = name == "mlflow"
    secs = "10"
    return [
        ("log-metric c1", ["log-metric", "--connections", "1", "--seconds", secs]),
        ("log-metric c8", ["log-metric", "--connections", "8", "--seconds", secs]),
        ("log-metric c64", ["log-metric", "--connections", "64", "--seconds", secs]),
        ("log-batch c8", ["log-batch", "--connections", "8", "--seconds", secs]),
        ("get-history", ["history", "--points", "100000", "--requests", "5" if slow else "30"]),
        ("bulk-interval", ["bulk-interval", "--points", "100000" if slow else "1000000", "--requests", "5" if slow else "30"]),
        ("search-runs", ["search", "--runs", "2000" if slow else ("20000" if name == "fasttrackml" else "100000"),
                         "--requests", "5" if slow else "20"]),
    ]


# Values an event carries when logged to MLflow as metrics instead: latency, prediction, label
# and its ten features, one metric point each.
VALUES_PER_EVENT = 13


def monitoring(smoke, backend, only=None, out=None):
    """plumb's monitoring workloads, and MLflow's log-batch carrying the same events as metrics."""
    pg = backend == "postgres"
    interval_ms = 1000
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as workdir:
        secs = "0.5" if smoke else "10"
        events = "20000" if smoke else "10000000"
        r = {}
        # Ingest and the window with the server's default evaluation interval (15 s); the lag
        # with a one-second interval (the figure is relative to it).
        for label, args, interval in [
            ("ingest c8", ["monitor-ingest", "--connections", "8", "--seconds", secs], None),
            ("ingest c2", ["monitor-ingest", "--connections", "2", "--seconds", secs], None),
            ("window 1h", ["monitor-window", "--events", events, "--requests", "3" if smoke else "20"], None),
            ("lag", ["monitor-lag", "--rounds", "2" if smoke else "10", "--interval-ms", str(interval_ms)],
             interval_ms),
        ]:
            uri = fresh_database("plumb_bench_monitoring") if pg else "sqlite:///plumb.db"
            extra = ["--monitor-interval", f"{interval}ms"] if interval else []
            sub = tempfile.mkdtemp(dir=workdir)
            srv = Server("plumb", lambda port: [PLUMB, "server", "--port", str(port), "--backend-store-uri", uri,
                                                *extra], sub)
            try:
                r[label] = with_peak_rss(srv, lambda: loadgen(srv.url, *args)) if label.startswith("ingest") \
                    else loadgen(srv.url, *args)
                print(f"   plumb {label}: {json.dumps(r[label])}", flush=True)
            finally:
                srv.stop()
                if pg:
                    psql('DROP DATABASE IF EXISTS "plumb_bench_monitoring" WITH (FORCE)')
        results["plumb"] = r
        if not smoke and only in (None, "mlflow"):
            muri = (fresh_database("mlflow_bench_monitoring").replace("postgres://", "postgresql+psycopg2://")
                    if pg else "sqlite:///mlflow.db")
            mlflow = Server("mlflow", lambda port: [os.path.join(VENV, "bin", "mlflow"), "server", "--host", "127.0.0.1",
                                                    "--port", str(port), "--backend-store-uri", muri], workdir)
            try:
                res = loadgen(mlflow.url, "log-batch", "--connections", "8", "--seconds", secs)
                if "points_per_s" in res:
                    res["events_per_s"] = res["points_per_s"] / VALUES_PER_EVENT
                print(f"   mlflow log-batch as events: {json.dumps(res)}", flush=True)
                results["mlflow"] = {"log-batch c8": res}
            finally:
                mlflow.stop()
                if pg:
                    psql('DROP DATABASE IF EXISTS "mlflow_bench_monitoring" WITH (FORCE)')
    save_results("monitoring", smoke, backend, results, only, out)
    if only:
        return
    p = results["plumb"]
    if smoke:
        assert p["ingest c8"]["events_per_s"] > 0 and p["window 1h"]["counted"] == 20000, p
        print("bench smoke: monitoring workloads ran")
    elif backend == "sqlite" and not only:
        put_section("## Monitoring", monitoring_section())


def last_run(kind):
    """(results, day) of the last full `--<kind>` run (`target/bench-<kind>.json`), or (None, None)."""
    path = os.path.join(ROOT, "target", f"bench-{kind}.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        return json.load(f), datetime.date.fromtimestamp(os.path.getmtime(path)).isoformat()


def cpu_model():
    """The machine's processor, as /proc/cpuinfo names it (every section says where it ran)."""
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")


def put_section(heading, section):
    """Puts a section of BENCHMARKS.md in place: from its heading to the next section or the
    closing "Raw numbers" line (the other sections are the last full runs' and stay)."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        doc = f.read()
    start = doc.find(f"\n{heading}\n")
    anchor = doc.find("Raw numbers (all percentiles")
    if start >= 0:
        ends = [i for i in (doc.find("\n## ", start + 1), anchor) if i > start]
        end = min(ends) if ends else len(doc)
        doc = doc[:start] + section + "\n" + doc[end:].lstrip("\n")
    elif anchor >= 0:
        doc = doc[:anchor] + section.lstrip("\n") + "\n" + doc[anchor:]
    else:
        doc += section
    with open(path, "w") as f:
        f.write(doc)


def save_results(kind, smoke, backend, results, only=None, out=None):
    """Writes `--out`, else `target/bench-<kind>[-smoke][-backend][-only-<peer>].json` (a run of
    one peer never replaces the full run's file that BENCHMARKS.md is written from); exits 1
    when a plumb workload failed."""
    suffix = ("" if backend == "sqlite" else f"-{backend}") + (f"-only-{only}" if only else "")
    out = out or os.path.join(ROOT, "target", f"bench-{kind}{'-smoke' if smoke else ''}{suffix}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    errors = [k for k, v in results.get("plumb", {}).items() if "error" in v or v.get("errors")]
    if errors:
        print(f"{kind} workloads failed: {errors}", file=sys.stderr)
        sys.exit(1)


def monitoring_section():
    """The Monitoring section of BENCHMARKS.md from the last full monitoring run, or ''."""
    r, when = last_run("monitoring")
    if r is None:
        return kept_section("## Monitoring", "\n## ", "Raw numbers")
    p, m = r["plumb"], r.get("mlflow", {}).get("log-batch c8", {})
    ingest = p["ingest c8"]["events_per_s"]
    mlflow_events = m.get("events_per_s")
    ratio = f"{ingest / mlflow_events:,.0f}x" if mlflow_events else "n/a"
    w, lag = p["window 1h"], p["lag"]
    cpu = cpu_model()
    return f"""
## Monitoring

`bash bench/run.sh --monitoring` (run of {when}, SQLite, {os.cpu_count()} cores, {cpu}): inference events with
ten numeric features, a latency, a prediction and a label each, time-ordered, posted in batches
of 1000 and answered after COMMIT, to a fresh plumb per workload with its default settings (the
lag row: `--monitor-interval` 1 s); MLflow 3.17.2 logging the same events as `log-batch` metrics
({VALUES_PER_EVENT} points per event, batches of 1000 points) in the same run.

| workload | plumb | MLflow (same events as metrics) | plumb vs MLflow |
|---|---|---|---|
| event ingest c8: events/s | {fmt(ingest)} | {fmt(mlflow_events)} | {ratio} |
| event ingest c2: events/s | {fmt(p["ingest c2"]["events_per_s"])} | | |
| ingest c8: p50 / p99 ms per batch | {fmt(p["ingest c8"]["p50_ms"])} / {fmt(p["ingest c8"]["p99_ms"])} | | |
| RSS under ingest: MiB | {fmt(p["ingest c8"].get("peak_rss_mib"))} | | |
| 1-hour window over {w["events"]:,} events: p50 / p99 ms | {fmt(w["p50_ms"])} / {fmt(w["p99_ms"])} | | |
| loading those events: events/s (rollups folded meanwhile) | {fmt(w["events_per_s_loading"])} | | |
| folding left after loading: s | {fmt(w["fold_seconds"])} | | |
| batch acknowledged -> alert firing (`for: 0`), interval {lag["interval_ms"]} ms: p50 / max ms | {fmt(lag["p50_ms"])} / {fmt(lag["max_ms"])} | | |
"""


def traces(smoke, backend, only=None, out=None):
    """Tracing: OTLP span ingest and a trace search over 100k traces, plumb and MLflow's own
    server through the same endpoints (`/v1/traces`, `traces/search`)."""
    pg = backend == "postgres"
    secs = "0.5" if smoke else "10"
    count = "2000" if smoke else "100000"
    plan_ = [
        ("ingest c8", ["trace-ingest", "--connections", "8", "--seconds", secs]),
        ("search", ["trace-search", "--traces", count, "--requests", "3" if smoke else "20"]),
    ]
    peers = {"plumb": lambda port, uri: [PLUMB, "server", "--port", str(port), "--backend-store-uri", uri]}
    if not smoke:
        peers["mlflow"] = lambda port, uri: [os.path.join(VENV, "bin", "mlflow"), "server", "--host", "127.0.0.1",
                                             "--port", str(port), "--backend-store-uri", uri, "--workers", "1"]
    if only:
        peers = {k: v for k, v in peers.items() if k == only}
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-traces-") as workdir:
        for name, argv in peers.items():
            r = {}
            for label, args in plan_:
                db = f"{name}_bench_traces"
                uri = fresh_database(db) if pg else f"sqlite:///{name}.db"
                if pg and name == "mlflow":
                    uri = uri.replace("postgres://", "postgresql+psycopg2://")
                sub = tempfile.mkdtemp(dir=workdir)
                srv = Server(name, lambda port: argv(port, uri), sub)
                try:
                    r[label] = loadgen(srv.url, *args)
                    print(f"   {name} {label}: {json.dumps(r[label])}", flush=True)
                finally:
                    srv.stop()
                    if pg:
                        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            results[name] = r
    save_results("traces", smoke, backend, results, only, out)
    if only:
        return
    p = results["plumb"]
    if smoke:
        assert p["ingest c8"]["spans_per_s"] > 0 and p["search"]["page"] > 0, p
        print("bench smoke: trace workloads ran")
    elif backend == "sqlite":
        put_section("## Traces", traces_section())


def traces_section():
    """The Traces section of BENCHMARKS.md from the last full trace run, or ''."""
    r, when = last_run("traces")
    if r is None:
        return kept_section("## Traces", "\n## ", "Raw numbers")
    p, m = r["plumb"], r.get("mlflow", {})
    cpu = cpu_model()

    def ratio(a, b, higher_is_better=True):
        if not a or not b:
            return "n/a"
        return f"{a / b:,.0f}x" if higher_is_better else f"{b / a:,.0f}x"

    pi, mi = p["ingest c8"], m.get("ingest c8", {})
    ps, ms = p["search"], m.get("search", {})
    return f"""
## Traces

`bash bench/run.sh --traces` (run of {when}, SQLite, {os.cpu_count()} cores, {cpu}): OTLP protobuf
exports (100 traces of 5 spans per request, 8 connections) to `/v1/traces`, and
`traces/search` with `trace.status = 'ERROR'` (the 100 newest of {ps["traces"]:,} one-span traces,
10% failed) on a fresh server per workload; MLflow 3.17.2's own server through the same
endpoints in the same run.

| workload | plumb | MLflow | plumb vs MLflow |
|---|---|---|---|
| OTLP ingest c8: spans/s | {fmt(pi["spans_per_s"])} | {fmt(mi.get("spans_per_s"))} | {ratio(pi["spans_per_s"], mi.get("spans_per_s"))} |
| ingest c8: p50 / p99 ms per request | {fmt(pi["p50_ms"])} / {fmt(pi["p99_ms"])} | {fmt(mi.get("p50_ms"))} / {fmt(mi.get("p99_ms"))} | |
| search over {ps["traces"]:,} traces: p50 / p99 ms | {fmt(ps["p50_ms"])} / {fmt(ps["p99_ms"])} | {fmt(ms.get("p50_ms"))} / {fmt(ms.get("p99_ms"))} | {ratio(ps["p50_ms"], ms.get("p50_ms"), False)} |
| loading those traces: s | {fmt(ps["load_seconds"])} | {fmt(ms.get("load_seconds"))} | |
"""


def ui(smoke, only=None, out=None):
    """The web UI: the same data (bench/ui_seed.py writes it into an MLflow database; plumb
    imports that database) shown by plumb's UI and by MLflow 3.17.2's own, each measured by
    bench/ui.mjs in headless Chromium. Needs `ui/node_modules` (npm ci) and Debian's chromium."""
    runs, points = (300, 20_000) if smoke else (10_000, 1_000_000)
    # Any venv with mlflow 3.17.2 creates MLflow's schema: the bench one, or the compat tests'.
    py = next(p for p in (os.path.join(VENV, "bin", "python"), os.path.join(ROOT, ".venvs", "mlflow3", "bin", "python"))
              if os.path.exists(p))
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as workdir:
        db = os.path.join(workdir, "mlflow.db")
        subprocess.run([py, "-c", "import sys; from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as S;"
                        " S('sqlite:///' + sys.argv[1], sys.argv[2])", db, os.path.join(workdir, "mlartifacts")],
                       check=True, capture_output=True)
        seeded = json.loads(subprocess.run([sys.executable, os.path.join(ROOT, "bench", "ui_seed.py"), db,
                                            str(runs), str(points)], check=True, capture_output=True,
                                           text=True).stdout)
        exp, long_id = seeded["experiment_id"], seeded["long_run_id"]
        start = time.monotonic()
        subprocess.run([PLUMB, "import", f"sqlite:///{db}", "--backend-store-uri", "sqlite:///plumb.db"],
                       cwd=workdir, check=True, capture_output=True)
        import_s = time.monotonic() - start
        peers = {
            "plumb": ([PLUMB, "server", "--backend-store-uri", "sqlite:///plumb.db"],
                      f"#/experiments/{exp}", f"#/runs/{long_id}?metric=loss"),
        }
        if not smoke:
            peers["mlflow"] = ([os.path.join(VENV, "bin", "mlflow"), "server", "--host", "127.0.0.1",
                                "--backend-store-uri", "sqlite:///mlflow.db"],
                               f"#/experiments/{exp}/runs", f"#/experiments/{exp}/runs/{long_id}/model-metrics")
        for name, (argv, runs_path, chart_path) in peers.items():
            if only and name != only:
                continue
            srv = Server(name, lambda port: [*argv, "--port", str(port)], workdir)
            try:
                cfg = {"peer": name, "runs_url": f"{srv.url}/{runs_path}", "chart_url": f"{srv.url}/{chart_path}",
                       "row": f"run-{runs - 10:05d}", "all_runs": runs + 1, "repeats": 2 if smoke else 5}
                res = subprocess.run(["node", os.path.join(ROOT, "bench", "ui.mjs"), json.dumps(cfg)],
                                     capture_output=True, text=True, timeout=1800)
                r = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else \
                    {"error": res.stderr.strip()[-500:]}
                r["idle_rss_mib"] = srv.idle_rss_mib
                if name == "plumb":
                    r["import_s"] = import_s
                if r.get("page_errors"):
                    r["errors"] = r["page_errors"]
                print(f"   {name}: {json.dumps(r)}", flush=True)
                results[name] = {"ui": r}
            finally:
                srv.stop()
    results["data"] = {"runs": runs + 1, "points": points}
    save_results("ui", smoke, "sqlite", results, only, out)
    if smoke:
        p = results["plumb"]["ui"]
        assert p["rows_ms"] > 0 and p["all_ms"] > 0 and p["chart_ms"] > 0, p
        print("bench smoke: UI workloads ran")
    elif not only:
        put_section("## Web UI", ui_section())


def ui_section():
    """The Web UI section of BENCHMARKS.md from the last full UI run, or the one it has."""
    r, when = last_run("ui")
    if r is None:
        return kept_section("## Web UI", "\n## ", "Raw numbers")
    p, m, d = r["plumb"]["ui"], r.get("mlflow", {}).get("ui", {}), r["data"]
    cpu = cpu_model()

    def ms(v):
        return "n/a" if v is None else f"{v:,.0f}"

    def ratio(a, b):
        return f"{b / a:,.1f}x" if a and b else ""

    rows = [
        (f"runs table: a row on screen, ms", "rows_ms"),
        ("runs table: interactive (no long task for 2 s after), ms", "interactive_ms"),
        (f"runs table: all {d['runs']:,} runs in the table, ms", "all_ms"),
        (f"chart of a {d['points']:,}-point metric: line drawn, ms", "chart_ms"),
        ("chart page: interactive, ms", "chart_interactive_ms"),
    ]
    lines = "\n".join(f"| {label} | {ms(p.get(k))} | {ms(m.get(k))} | {ratio(p.get(k), m.get(k))} |" for label, k in rows)
    return f"""
## Web UI

`bash bench/run.sh --ui` (run of {when}, {os.cpu_count()} cores, {cpu}): one experiment of
{d["runs"]:,} runs (10 metrics, 10 params, 5 tags each) and a run whose `loss` has {d["points"]:,}
points, written into an MLflow SQLite database and imported into plumb (`plumb import`,
{p["import_s"]:.0f} s), so both UIs show the same data. Headless Debian Chromium (playwright-core,
1280x800) opens each page in a fresh context (nothing cached), {p["repeats"]} times; medians of the
page's own clock from the start of navigation (bench/ui.mjs). MLflow 3.17.2's own server and UI
in the same run. MLflow's table shows the first 100 runs and a "Load more" button (no figure for
all runs); plumb's draws its first 200 and loads the rest behind them. MLflow's chart reads 320
sampled points, plumb's 2,000 (each interval's lowest and highest).

| | plumb | MLflow 3.17.2 | plumb faster by |
|---|---|---|---|
{lines}
| JS+CSS transferred: KiB | {p["asset_kib"]:,.0f} | {m.get("asset_kib", 0):,.0f} | |
| JS heap after the table: MiB | {p["heap_mib"]:,.0f} | {m.get("heap_mib", 0):,.0f} | |
| server's resident memory, idle after start: MiB | {p["idle_rss_mib"]:,.0f} | {m.get("idle_rss_mib", 0):,.0f} | |
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitoring", action="store_true", help="the monitoring workloads (see above)")
    ap.add_argument("--traces", action="store_true", help="the trace workloads (see above)")
    ap.add_argument("--ui", action="store_true", help="the web UI in headless Chromium (see above)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default=None, help="one server (plumb, mlflow, fasttrackml); no BENCHMARKS.md")
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite BENCHMARKS.md from the last full run's target/bench-results.json")
    args = ap.parse_args()
    if args.markdown_only:
        write_markdown()
        return
    if args.monitoring:
        monitoring(args.smoke, args.backend, args.only, args.out)
        return
    if args.traces:
        traces(args.smoke, args.backend, args.only, args.out)
        return
    if args.ui:
        ui(args.smoke, args.only, args.out)
        return
    results = {}
    for name, argv_for in servers(args.smoke, args.backend).items():
        if args.only and name != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
            print(f"== {name}", flush=True)
            srv = Server(name, argv_for, workdir)
            r = {"startup_ms": srv.startup_ms, "idle_rss_mib": srv.idle_rss_mib}
            try:
                for label, la in plan(args.smoke, name):
                    run = lambda: loadgen(srv.url, *la)
                    res = with_peak_rss(srv, run) if label.startswith("log-batch") else run()
                    print(f"   {label}: {json.dumps(res)}", flush=True)
                    r[label] = res
                if not args.smoke and name != "floor":
                    r["seed-script"] = seed_script(srv.url)
                    print(f"   seed-script: {r['seed-script']}", flush=True)
            finally:
                srv.stop()
                if args.backend == "postgres":
                    psql(f'DROP DATABASE IF EXISTS "plumb_bench_{name}" WITH (FORCE)')
            results[name] = r
    # A peer may lack an endpoint (FastTrackML has no bulk-interval): its cell reads n/a. Only a
    # failing plumb workload fails the harness.
    failures = [k for k, v in results.get("plumb", {}).items() if isinstance(v, dict) and "error" in v]
    suffix = "" if args.backend == "sqlite" else f"-{args.backend}"
    out = args.out or os.path.join(ROOT, "target", f"bench-smoke{suffix}.json" if args.smoke else f"bench-results{suffix}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    if not args.smoke and not args.only:
        write_markdown()
    if failures:
        print(f"workloads failed: {failures}", file=sys.stderr)
        sys.exit(1)
    if args.smoke:
        p = results["plumb"]
        # The smoke run checks that every workload ran and moved data, not how fast.
        assert p["log-metric c8"]["requests"] > 0 and p["log-batch c8"]["requests"] > 0
        assert p["search-runs"]["matched_page"] > 0
        if args.backend == "sqlite":
            assert results["floor"]["log-metric c8"]["requests"] > 0
        print("bench smoke: all workloads ran")


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v}{unit}"


def table(results):
    """The side-by-side table of one full run."""
    rows = []
    names = [n for n in results if n != "floor"]

    def metric(label, key):
        return [results[n].get(label, {}).get(key) if isinstance(results[n].get(label), dict) else None for n in names]

    def ratio(vals, higher_is_better=True):
        p = vals[0]
        out = []
        for v in vals[1:]:
            if not p or not v:
                out.append("n/a")
            else:
                out.append(f"{(p / v if higher_is_better else v / p):,.1f}x")
        return out

    def add(what, vals, unit, better=True):
        rows.append([what] + [fmt(v, unit) for v in vals] + ratio(vals, better))

    for label in ["log-metric c1", "log-metric c8", "log-metric c64"]:
        add(f"{label}: requests/s", metric(label, "rps"), "")
        add(f"{label}: p50 / p99 ms", [None] * len(names), "")
        rows[-1] = [f"{label}: p50 / p99 ms"] + [
            f"{fmt(a)} / {fmt(b)}" for a, b in zip(metric(label, "p50_ms"), metric(label, "p99_ms"))
        ] + [""] * (len(names) - 1)
    add("log-batch c8: points/s", metric("log-batch c8", "points_per_s"), "")
    rows.append(["log-batch c8: p50 / p99 ms"] + [
        f"{fmt(a)} / {fmt(b)}" for a, b in zip(metric("log-batch c8", "p50_ms"), metric("log-batch c8", "p99_ms"))
    ] + [""] * (len(names) - 1))
    add("get-history 100k points: p50 ms", metric("get-history", "p50_ms"), "", False)
    add("bulk-interval to 1000: p50 ms", metric("bulk-interval", "p50_ms"), "", False)
    rows.append(["bulk-interval: points in the metric"] + [fmt(v) for v in metric("bulk-interval", "points")] + [""] * (len(names) - 1))
    add("search-runs: p50 ms", metric("search-runs", "p50_ms"), "", False)
    rows.append(["search-runs: runs in the experiment"] + [fmt(v) for v in metric("search-runs", "runs")] + [""] * (len(names) - 1))
    rows.append(["search-runs: load time s"] + [fmt(v) for v in metric("search-runs", "load_seconds")] + [""] * (len(names) - 1))
    add("seed script end to end: s", metric("seed-script", "seconds"), "", False)
    add("start-up: ms", [results[n].get("startup_ms") for n in names], "", False)
    add("idle RSS: MiB", [results[n].get("idle_rss_mib") for n in names], "", False)
    add("RSS under log-batch: MiB", metric("log-batch c8", "peak_rss_mib"), "", False)

    header = ["workload"] + names + [f"plumb vs {n}" for n in names[1:]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def ceiling(results):
    """plumb's write workloads next to the do-nothing server's, under the same load."""
    floor, plumb = results.get("floor"), results.get("plumb", {})
    if not floor:
        return ""
    lines = [
        "| workload | do-nothing server | plumb | plumb / do-nothing |",
        "|---|---|---|---|",
    ]
    for label, key in [("log-metric c1", "rps"), ("log-metric c8", "rps"), ("log-metric c64", "rps"),
                       ("log-batch c8", "points_per_s")]:
        f, p = floor.get(label, {}).get(key), plumb.get(label, {}).get(key)
        unit = "points/s" if key == "points_per_s" else "requests/s"
        share = f"{100 * p / f:.0f}%" if f and p else "n/a"
        lines.append(f"| {label}: {unit} | {fmt(f)} | {fmt(p)} | {share} |")
    return f"""
### The ceiling of this machine

The same write load, in the same run, against a server that does nothing but read and parse each
request and answer it (`plumb-bench floor`: axum on tokio, like plumb; it stores nothing). No
server can answer faster than this one here: it is what the HTTP stack and the load generator,
sharing the two cores with it, leave.

{chr(10).join(lines)}
"""


def kept_section(start, *stops):
    """The text of BENCHMARKS.md from the line `start` up to the first of `stops` after it (kept
    when this run did not produce it), or ''."""
    try:
        with open(os.path.join(ROOT, "BENCHMARKS.md")) as f:
            doc = f.read()
    except OSError:
        return ""
    i = doc.find(start)
    if i < 0:
        return ""
    ends = [j for j in (doc.find(stop, i + 1) for stop in stops if stop) if j >= 0]
    j = min(ends) if ends else -1
    return "\n" + (doc[i:j] if j >= 0 else doc[i:]).rstrip() + "\n"


def write_markdown():
    """BENCHMARKS.md from the last full run on each backend (target/bench-results*.json)."""
    sqlite_path = os.path.join(ROOT, "target", "bench-results.json")
    if not os.path.exists(sqlite_path):
        # A PostgreSQL run on a fresh checkout: its results are saved; the page needs both.
        print("BENCHMARKS.md not rewritten: no SQLite results yet (run `bash bench/run.sh`; "
              "it writes the page with these PostgreSQL results)", file=sys.stderr)
        return
    with open(sqlite_path) as f:
        sqlite_results = json.load(f)
    sqlite_table = table(sqlite_results)
    pg_path = os.path.join(ROOT, "target", "bench-results-postgres.json")
    notes = os.path.join(ROOT, "bench", "notes.md")
    notes_text = ""
    if os.path.exists(notes):
        with open(notes) as f:
            notes_text = f.read()
    # Without this run's PostgreSQL results, the table of the last PostgreSQL run is kept as it is.
    pg_section = kept_section("## On PostgreSQL", notes_text.split("\n", 1)[0])
    if os.path.exists(pg_path):
        with open(pg_path) as f:
            pg_results = json.load(f)
        when = datetime.date.fromtimestamp(os.path.getmtime(pg_path)).isoformat()
        pg_section = f"""
## On PostgreSQL

`bash bench/run.sh --backend postgres` (run of {when}; servers in it: {", ".join(pg_results)}): the
same workloads, each server on a fresh database of the machine's PostgreSQL 15 (`fsync=on`,
`synchronous_commit=on`, `shared_buffers=128MB`); MLflow through `postgresql+psycopg2://`,
FastTrackML through `postgres://`. The server under test, PostgreSQL and the load generator share
the two cores.

{table(pg_results)}
"""
    cpu = cpu_model()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    run_day = datetime.date.fromtimestamp(os.path.getmtime(os.path.join(ROOT, "target", "bench-results.json")))
    doc = f"""# Benchmarks

Produced by `bash bench/run.sh` on {run_day.isoformat()}: one run, one machine, the
load generator (`plumb-bench`, a Rust HTTP client, closed loop, unique points) on the same
machine as the server under test. Each server starts on a fresh SQLite database in its own
temporary folder with its default settings.

- Machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.platform()}
- Peers: MLflow 3.17.2 (`mlflow server`, its default uvicorn workers), FastTrackML 0.6.0 (`fml server`),
  {subprocess.run([PLUMB, '--version'], capture_output=True, text=True).stdout.strip()} (release build).
- Durability: plumb acknowledges a write only after its transaction committed (WAL).
- Ratios: "plumb vs X" is plumb's throughput over X's, or X's latency/memory over plumb's
  (higher is better for plumb in both).
- Smaller data sets where a peer would need hours to load them are shown in the rows
  "points in the metric" and "runs in the experiment".

{sqlite_table}
{ceiling(sqlite_results)}{monitoring_section()}{traces_section()}{ui_section()}
Raw numbers (all percentiles, errors, bytes): `target/bench-results.json` of the run
(`target/bench-results-postgres.json` for PostgreSQL).
{pg_section}"""
    if notes_text:
        doc += "\n" + notes_text
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
