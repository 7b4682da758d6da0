"""Production monitoring driven by the official client only (runs tagged env=production, the
registry's alias as the baseline), and by the pure-Python helper in clients/python, against the
real binary with a one-second evaluator."""
import os
import sys
import tempfile
import time

import pytest
import requests

from conftest import Server

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python", "examples"))

from plumb_monitor import Monitor  # noqa: E402
from asgi_middleware import PlumbMiddleware  # noqa: E402


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="plumb-monitoring-") as workdir:
        s = Server(workdir, "--monitor-interval", "1s")
        try:
            yield s
        finally:
            s.stop()
            errors = s.server_errors()
            assert not errors, "plumb answered 5xx:\n" + "".join(errors)


def wait_for(srv, monitor, rule, state, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        alerts = requests.get(f"{srv.url}/api/2.0/plumb/alerts", params={"monitor": monitor}).json()
        mine = [a for a in alerts["alerts"] if a["rule"] == rule]
        if mine and mine[0]["state"] == state:
            return mine[0]
        assert time.monotonic() < deadline, f"{rule} never {state}: {mine}"
        time.sleep(0.1)


def test_official_client_only_with_a_baseline_that_follows_the_alias(srv):
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=srv.url)
    mlflow.set_tracking_uri(srv.url)
    exp = client.create_experiment("iris-monitoring")
    # Two trained versions: accuracy 0.90 and 0.99 on their evaluation sets.
    client.create_registered_model("iris-mon")
    versions = []
    for accuracy in (0.90, 0.99):
        run = client.create_run(exp, tags={"env": "training", "model": "iris"})
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version("iris-mon", f"runs:/{run.info.run_id}/model", run.info.run_id)
        versions.append(mv.version)
    client.set_registered_model_alias("iris-mon", "champion", versions[0])

    # The service logs live numbers with the plain client to a run tagged env=production.
    prod = client.create_run(exp, tags={"env": "production", "model": "iris"})
    now = int(time.time() * 1000)
    for i in range(40):
        client.log_metric(prod.info.run_id, "accuracy", 0.93, timestamp=now - 20_000 + i, step=i)
        client.log_metric(prod.info.run_id, "latency_ms", 80.0 + i, timestamp=now - 20_000 + i, step=i)
    spec = {
        "model": "models:/iris-mon@champion",
        "source": {"runs": "tags.env = 'production' and tags.model = 'iris'", "events": False,
                   "experiments": ["iris-monitoring"]},
        "baseline": "models:/iris-mon@champion",
        "rules": [
            {"name": "accuracy-drop", "metric": "accuracy", "window": "5m", "relative_drop": 0.02,
             "min_samples": 10, "severity": "critical"},
            {"name": "slow", "metric": "latency_ms:p95", "window": "5m", "above": 250, "min_samples": 10},
        ],
    }
    r = requests.put(f"{srv.url}/api/2.0/plumb/monitors/iris-prod", json=spec)
    assert r.status_code == 200, r.text
    ok = wait_for(srv, "iris-prod", "accuracy-drop", "inactive")
    assert ok["baseline"] == pytest.approx(0.90), ok
    assert ok["value"] == pytest.approx(0.93), ok
    wait_for(srv, "iris-prod", "slow", "inactive")

    # The alias moves to the better version: 0.93 is now a drop of more than 2% from 0.99.
    client.set_registered_model_alias("iris-mon", "champion", versions[1])
    firing = wait_for(srv, "iris-prod", "accuracy-drop", "firing")
    assert firing["baseline"] == pytest.approx(0.99), firing

    # A latency regression logged through the plain client fires the latency rule.
    now = int(time.time() * 1000)
    for i in range(60):
        client.log_metric(prod.info.run_id, "latency_ms", 400.0 + i, timestamp=now + i, step=100 + i)
    slow = wait_for(srv, "iris-prod", "slow", "firing")
    assert slow["value"] > 250, slow

    series = requests.get(f"{srv.url}/api/2.0/plumb/monitors/iris-prod/metrics",
                          params={"metric": "accuracy"}).json()
    assert series["from"] == "runs" and series["baseline"] == pytest.approx(0.99), series
    history = requests.get(f"{srv.url}/api/2.0/plumb/alerts/history",
                           params={"monitor": "iris-prod", "state": "firing"}).json()
    assert {c["rule"] for c in history["changes"]} == {"accuracy-drop", "slow"}, history
    metrics = requests.get(f"{srv.url}/metrics").text
    assert 'ALERTS{alertname="accuracy-drop",alertstate="firing",monitor="iris-prod",severity="critical"} 1' in metrics


def test_python_helper_batches_labels_and_never_raises(srv):
    r = requests.post(f"{srv.url}/api/2.0/plumb/monitors", json={
        "name": "helper", "rules": [
            {"name": "acc", "metric": "accuracy", "window": "5m", "below": 0.8, "min_samples": 50}]})
    assert r.status_code == 200, r.text
    m = Monitor("helper", srv.url, flush_interval=0.05)
    ids = []
    t0 = time.perf_counter()
    for i in range(1000):
        ids.append(m.log(latency_ms=5 + i % 7, prediction=i % 2, features={"x": i / 10}))
    assert time.perf_counter() - t0 < 2.0, "log() must not wait for the network"
    # Ground truth arrives later: 70% right.
    for i, rid in enumerate(ids):
        m.label(rid, i % 2 if i % 10 < 7 else 1 - i % 2)
    assert m.flush(30), "flushed"
    assert (m.sent, m.dropped) == (1000, 0)
    firing = wait_for(srv, "helper", "acc", "firing")
    assert firing["value"] == pytest.approx(0.7), firing
    m.close()

    # An unknown monitor (400/404) and an unreachable server: dropped, counted, never raised.
    lost = Monitor("no-such-monitor", srv.url, flush_interval=0.05)
    lost.log(latency_ms=1)
    assert lost.flush(10) and lost.dropped == 1
    # One event at a time in flight (retrying an unreachable server), ten queued: the rest of
    # thirty are dropped at once, without waiting.
    down = Monitor("helper", "http://127.0.0.1:9", flush_interval=0.05, max_queue=10, batch_size=1)
    t0 = time.perf_counter()
    for _ in range(30):
        down.log(latency_ms=1)
    assert time.perf_counter() - t0 < 1.0
    assert down.dropped >= 19, f"a full queue drops instead of blocking: {down.dropped}"
    down._closed = True  # do not wait for the retries of an unreachable server


def test_asgi_middleware_logs_latency_errors_and_predictions(srv):
    import asyncio

    r = requests.post(f"{srv.url}/api/2.0/plumb/monitors", json={"name": "asgi"})
    assert r.status_code == 200, r.text
    m = Monitor("asgi", srv.url, flush_interval=0.05)

    async def app(scope, receive, send):
        if scope["path"] == "/predict/fail":
            raise RuntimeError("model crashed")
        scope.setdefault("state", {})["prediction"] = "setosa"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped = PlumbMiddleware(app, m)

    async def call(path):
        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            pass

        await wrapped({"type": "http", "path": path}, receive, send)

    asyncio.run(call("/predict"))
    with pytest.raises(RuntimeError):
        asyncio.run(call("/predict/fail"))
    asyncio.run(call("/health"))
    assert m.flush(10) and m.sent == 2
    now = int(time.time() * 1000)
    q = {"window": "5m", "end_ms": now + 1000, "step_ms": 60000, "start_ms": now + 1000}
    count = requests.get(f"{srv.url}/api/2.0/plumb/monitors/asgi/metrics", params={**q, "metric": "count"}).json()
    errors = requests.get(f"{srv.url}/api/2.0/plumb/monitors/asgi/metrics", params={**q, "metric": "error_rate"}).json()
    assert count["points"][-1]["value"] == 2 and errors["points"][-1]["value"] == 0.5, (count, errors)
