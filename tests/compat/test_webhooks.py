"""MLflow 3's webhook API driven by the official client against the real binary: CRUD and
MLflow's errors, signed deliveries of registry events to a receiver run by the test, retries
that end in exactly one accepted delivery, the private-address rule, a delivery pending when the
server is killed delivered after its restart, and monitors' alert notifications (plumb's body,
Slack, Alertmanager)."""
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import BACKEND, Server, fresh_database, mlflow_major

pytestmark = pytest.mark.skipif(mlflow_major() < 3, reason="webhooks came with MLflow 3")

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
SECRET = "whsec-test"
OPEN_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": KEY,
    "PLUMB_NOTIFY_SECRET_TEST": SECRET,
}


class Receiver:
    """An HTTP receiver: records every request; answers each path from a script of statuses
    (the last one repeats), 200 by default."""

    def __init__(self):
        self.requests = []
        self.script = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with receiver.lock:
                    statuses = receiver.script.get(self.path, [200])
                    status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 400 else b"not now")

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def on(self, path, *statuses):
        with self.lock:
            self.script[path] = list(statuses)

    def at(self, path, accepted_only=False):
        with self.lock:
            return [r for r in self.requests if r["path"] == path and (r["status"] < 300 or not accepted_only)]

    def wait(self, path, n=1, accepted_only=True, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.at(path, accepted_only)) < n:
            assert time.monotonic() < deadline, f"{path}: {self.at(path)}"
            time.sleep(0.05)
        return self.at(path, accepted_only)

    def close(self):
        self.http.shutdown()


def verify(req, secret=SECRET):
    h = req["headers"]
    content = f"{h['x-mlflow-delivery-id']}.{h['x-mlflow-timestamp']}.{req['body']}"
    expected = base64.b64encode(hmac.new(secret.encode(), content.encode(), hashlib.sha256).digest()).decode()
    assert h["x-mlflow-signature"] == f"v1,{expected}"
    assert abs(int(h["x-mlflow-timestamp"]) - time.time()) < 120
    return json.loads(req["body"])


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="plumb-webhooks-") as workdir:
        s = Server(workdir, "--monitor-interval", "1s", env=OPEN_ENV)
        try:
            yield s
        finally:
            s.stop()
            errors = s.server_errors()
            assert not errors, "plumb answered 5xx:\n" + "".join(errors)


@pytest.fixture
def client(srv):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=srv.url)


def test_crud_and_errors_as_mlflow(srv, client, receiver):
    from mlflow.entities.webhook import WebhookStatus
    from mlflow.exceptions import MlflowException

    hook = client.create_webhook(
        name="ci-deploy",
        url=receiver.url + "/crud",
        events=["model_version.created", "model_version_alias.created"],
        description="deploys champions",
        secret=SECRET,
    )
    assert hook.webhook_id and hook.status == WebhookStatus.ACTIVE
    assert {str(e) for e in hook.events} == {"model_version.created", "model_version_alias.created"}
    raw = requests.get(f"{srv.url}/api/2.0/mlflow/webhooks/{hook.webhook_id}").json()["webhook"]
    assert "secret" not in raw and SECRET not in json.dumps(raw)
    assert raw["events"][0]["entity"] in ("MODEL_VERSION", "MODEL_VERSION_ALIAS")

    got = client.get_webhook(hook.webhook_id)
    assert (got.name, got.description, got.url) == ("ci-deploy", "deploys champions", receiver.url + "/crud")
    for i in range(3):
        client.create_webhook(name=f"extra-{i}", url=receiver.url + "/extra", events=["registered_model.created"])
    first = client.list_webhooks(max_results=2)
    assert len(first) == 2 and first.token
    rest = client.list_webhooks(max_results=10, page_token=first.token)
    assert len(rest) == 2 and not rest.token

    updated = client.update_webhook(hook.webhook_id, description="still deploys", status="DISABLED")
    assert updated.description == "still deploys" and updated.status == WebhookStatus.DISABLED
    assert updated.name == "ci-deploy" and updated.last_updated_timestamp >= hook.creation_timestamp
    client.update_webhook(hook.webhook_id, status="ACTIVE")

    with pytest.raises(MlflowException, match="cannot be empty or just whitespace") as e:
        client.create_webhook(name="blank", url="   ", events=["model_version.created"])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="Invalid webhook URL scheme: 'ftp'"):
        client.create_webhook(name="ftp", url="ftp://example.com/x", events=["model_version.created"])
    with pytest.raises(MlflowException, match="Webhook name '-bad' is invalid"):
        client.create_webhook(name="-bad", url=receiver.url, events=["model_version.created"])
    r = requests.post(
        f"{srv.url}/api/2.0/mlflow/webhooks",
        json={"name": "x", "url": receiver.url, "events": [{"entity": "MODEL_VERSION", "action": "DELETED"}]},
    )
    assert r.status_code == 400 and "Invalid action 'deleted' for entity 'model_version'" in r.json()["message"]

    doomed = client.create_webhook(name="doomed", url=receiver.url + "/x", events=["model_version.created"])
    client.delete_webhook(doomed.webhook_id)
    with pytest.raises(MlflowException, match=f"Webhook with ID {doomed.webhook_id} not found") as e:
        client.get_webhook(doomed.webhook_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # The test endpoint sends a signed sample now and reports what the receiver said.
    result = client.test_webhook(hook.webhook_id)
    assert result.success and result.response_status == 200 and result.response_body == "ok"
    sample = verify(receiver.at("/crud")[-1])
    assert sample["entity"] in ("model_version", "model_version_alias") and sample["data"]["name"]


def test_registry_events_are_delivered_signed(srv, client, receiver):
    receiver.on("/registry", 200)
    hook = client.create_webhook(
        name="registry",
        url=receiver.url + "/registry",
        events=["model_version.created", "model_version_alias.created", "model_version_tag.set"],
        secret=SECRET,
    )
    exp = client.create_experiment("webhook-exp")
    run = client.create_run(exp)
    client.create_registered_model("wh-model")
    mv = client.create_model_version("wh-model", f"runs:/{run.info.run_id}/model", run.info.run_id, tags={"team": "ml"})
    client.set_registered_model_alias("wh-model", "champion", mv.version)
    client.set_model_version_tag("wh-model", mv.version, "validated", "yes")
    got = [verify(r) for r in receiver.wait("/registry", 3)]
    by_kind = {(g["entity"], g["action"]): g for g in got}
    created = by_kind[("model_version", "created")]["data"]
    assert created == {
        "name": "wh-model",
        "version": mv.version,
        "source": f"runs:/{run.info.run_id}/model",
        "run_id": run.info.run_id,
        "tags": {"team": "ml"},
        "description": None,
    }
    assert by_kind[("model_version_alias", "created")]["data"] == {"name": "wh-model", "alias": "champion", "version": mv.version}
    assert by_kind[("model_version_tag", "set")]["data"]["value"] == "yes"
    assert all("timestamp" in g for g in got)
    log = requests.get(f"{srv.url}/api/2.0/plumb/deliveries", params={"webhook_id": hook.webhook_id}).json()
    assert {d["state"] for d in log["deliveries"]} == {"delivered"}


def test_a_failing_receiver_gets_exactly_one_accepted_delivery(srv, client, receiver):
    receiver.on("/flaky", 500, 503, 200)
    hook = client.create_webhook(name="flaky", url=receiver.url + "/flaky", events=["registered_model.created"], secret=SECRET)
    client.create_registered_model("flaky-model", description="d")
    receiver.wait("/flaky", 1, timeout=30)
    time.sleep(1.5)
    attempts = receiver.at("/flaky")
    assert [a["status"] for a in attempts] == [500, 503, 200]
    ids = {a["headers"]["x-mlflow-delivery-id"] for a in attempts}
    assert len(ids) == 1, "retries carry the same delivery id"
    assert verify(attempts[-1])["data"] == {"name": "flaky-model", "tags": {}, "description": "d"}
    log = requests.get(f"{srv.url}/api/2.0/plumb/deliveries", params={"webhook_id": hook.webhook_id}).json()["deliveries"]
    assert len(log) == 1 and log[0]["state"] == "delivered" and log[0]["attempts"] == 3
    assert log[0]["status_code"] == 200 and "503" in log[0]["error"]


def test_private_addresses_are_refused_by_default(receiver):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="plumb-webhooks-closed-") as workdir:
        env = {"MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https"}
        s = Server(workdir, env=env)
        try:
            c = MlflowClient(tracking_uri=s.url)
            for url in (receiver.url + "/x", receiver.url.replace("127.0.0.1", "localhost") + "/x", "http://[::1]/x", "http://169.254.169.254/latest"):
                with pytest.raises(MlflowException, match="must not resolve to a non-public IP address") as e:
                    c.create_webhook(name="internal", url=url, events=["model_version.created"])
                assert e.value.error_code == "INVALID_PARAMETER_VALUE"
            with pytest.raises(MlflowException, match="MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"):
                c.create_webhook(name="signed", url="https://93.184.215.14/x", events=["model_version.created"], secret="s")
            assert not s.server_errors()
        finally:
            s.stop()


def test_a_pending_delivery_survives_a_kill(receiver):
    from mlflow.tracking import MlflowClient

    receiver.on("/restart", 503, 503, 503, 200)
    database = fresh_database("plumb_wh") if BACKEND == "postgres" else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="plumb-webhooks-restart-") as workdir, database as pg:
        args = ("--backend-store-uri", pg) if BACKEND == "postgres" else ()
        env = {**OPEN_ENV, "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "10"}
        s = Server(workdir, *args, env=env)
        try:
            c = MlflowClient(tracking_uri=s.url)
            c.create_webhook(name="restart", url=receiver.url + "/restart", events=["registered_model.created"])
            c.create_registered_model("survivor")
            receiver.wait("/restart", 1, accepted_only=False)
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait()
            assert not receiver.at("/restart", accepted_only=True), "delivered before the kill"
        finally:
            s.log.close()
        again = Server(workdir, *args, env=env)
        try:
            got = receiver.wait("/restart", 1, timeout=40)
            assert json.loads(got[0]["body"])["data"]["name"] == "survivor"
            assert not again.server_errors()
        finally:
            again.stop()


def test_alert_notifications(srv, receiver):
    receiver.on("/alerts", 200)
    monitor = {
        "name": "latency-watch",
        "model": "models:/wh-model@champion",
        "rules": [{"name": "slow", "metric": "latency_ms:p95", "window": "5m", "above": 100, "min_samples": 1, "severity": "page"}],
        "notify": [
            {"webhook": receiver.url + "/alerts", "secret_env": "PLUMB_NOTIFY_SECRET_TEST"},
            {"slack": receiver.url + "/slack"},
            {"alertmanager": receiver.url + "/am"},
        ],
        "labels": {"team": "ml"},
    }
    r = requests.post(f"{srv.url}/api/2.0/plumb/monitors", json=monitor)
    assert r.status_code == 200, r.text
    bad = dict(monitor, name="bad-target", notify=[{"webhook": receiver.url, "secret_env": "AWS_SECRET_ACCESS_KEY"}])
    r = requests.post(f"{srv.url}/api/2.0/plumb/monitors", json=bad)
    assert r.status_code == 400 and "secret_env" in r.json()["message"]
    now = int(time.time() * 1000)
    events = [{"timestamp_ms": now - i * 100, "request_id": f"r{i}", "latency_ms": 500.0} for i in range(20)]
    r = requests.post(f"{srv.url}/api/2.0/plumb/monitors/latency-watch/events", json={"events": events})
    assert r.status_code == 200, r.text

    body = verify(receiver.wait("/alerts", 1, timeout=30)[0])
    assert (body["entity"], body["action"]) == ("alert", "firing")
    data = body["data"]
    assert (data["monitor"], data["rule"], data["state"], data["severity"]) == ("latency-watch", "slow", "firing", "page")
    assert data["value"] >= 400 and data["metric"] == "latency_ms:p95" and data["window"] == "5m"
    assert data["condition"]["above"] == 100 and data["labels"] == {"team": "ml"}
    assert data["model_version"]["name"] == "wh-model"
    assert data["links"]["monitor"].endswith("/api/2.0/plumb/monitors/latency-watch")

    slack = json.loads(receiver.wait("/slack", 1)[0]["body"])
    assert "FIRING" in slack["text"] and "latency-watch" in slack["text"]
    am = json.loads(receiver.wait("/am/api/v2/alerts", 1)[0]["body"])
    assert am[0]["labels"] == {"alertname": "slow", "monitor": "latency-watch", "severity": "page", "team": "ml"}
    assert am[0]["endsAt"] > am[0]["startsAt"]
    # A delivery is marked delivered after its receiver answered, so the log can trail the
    # receiver by a moment: wait for it.
    deadline = time.time() + 15
    while True:
        log = requests.get(f"{srv.url}/api/2.0/plumb/deliveries", params={"monitor": "latency-watch"}).json()["deliveries"]
        if ({d["state"] for d in log} == {"delivered"} and len(log) >= 3) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert {d["state"] for d in log} == {"delivered"} and len(log) >= 3, log
