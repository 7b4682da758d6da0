"""A broad tracking workload through the official client: every core endpoint, both majors."""
import base64
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import requests
from conftest import mlflow_major

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException


def error_code(exc):
    return getattr(exc.value, "error_code", None)


def test_experiments(server, client):
    exp_id = client.create_experiment("scen-exp", tags={"team": "ml"})
    exp = client.get_experiment(exp_id)
    assert exp.name == "scen-exp" and exp.tags == {"team": "ml"}
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert client.get_experiment_by_name("no-such-experiment") is None

    with pytest.raises(MlflowException) as e:
        client.create_experiment("scen-exp")
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"

    client.set_experiment_tag(exp_id, "stage", "dev")
    client.set_experiment_tag(exp_id, "temp", "x")
    if hasattr(client, "delete_experiment_tag"):
        client.delete_experiment_tag(exp_id, "temp")
        assert "temp" not in client.get_experiment(exp_id).tags
    client.rename_experiment(exp_id, "scen-exp-renamed")
    assert client.get_experiment(exp_id).name == "scen-exp-renamed"
    assert client.get_experiment(exp_id).tags["stage"] == "dev"

    for i in range(5):
        client.create_experiment(f"scen-many-{i}")
    found = client.search_experiments(filter_string="name LIKE 'scen-many-%'", order_by=["name DESC"])
    assert [e.name for e in found] == [f"scen-many-{i}" for i in reversed(range(5))]
    page = client.search_experiments(filter_string="name LIKE 'scen-many-%'", max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_experiments(filter_string="name LIKE 'scen-many-%'", max_results=10, page_token=page.token)
    assert len(rest) == 3

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert exp_id in {e.experiment_id for e in deleted}
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert mlflow.search_experiments(filter_string="tags.team = 'ml'")[0].experiment_id == exp_id


def test_runs_metrics_params_tags_and_search(server, client):
    mlflow.set_experiment("scen-runs")
    exp = client.get_experiment_by_name("scen-runs")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": 0.1, "model": "rf"})
        mlflow.log_metrics({"acc": 0.9, "loss": 0.3})
        for step in range(5):
            mlflow.log_metric("curve", step * 0.1, step=step)
        mlflow.log_metric("nan_metric", float("nan"))
        mlflow.log_metric("inf_metric", float("inf"))
        mlflow.set_tags({"env": "prod", "owner": "alice"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_param("lr", 0.01)
            mlflow.log_metric("acc", 0.5)
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    run = client.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED" and run.info.end_time
    assert run.data.params == {"lr": "0.1", "model": "rf"}
    assert run.data.metrics["acc"] == 0.9 and run.data.metrics["curve"] == pytest.approx(0.4)
    assert math.isnan(run.data.metrics["nan_metric"])
    assert run.data.metrics["inf_metric"] > 1e308
    assert [m.step for m in client.get_metric_history(run.info.run_id, "curve")] == list(range(5))

    # Params are immutable; the same value again is fine.
    client.log_param(run.info.run_id, "lr", 0.1)
    with pytest.raises(MlflowException) as e:
        client.log_param(run.info.run_id, "lr", 0.2)
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    # A 1000-point batch and its history, paginated by the client.
    ts = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric("big", float(i), ts + i, i) for i in range(1000)])
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("big2", float(i), ts, i) for i in range(1000)],
        params=[Param(f"p{i}", str(i)) for i in range(10)],
        tags=[RunTag(f"t{i}", str(i)) for i in range(10)],
    )
    assert len(client.get_metric_history(run.info.run_id, "big")) == 1000
    assert client.get_run(run.info.run_id).data.metrics["big"] == 999.0

    client.set_tag(run.info.run_id, "temp", "x")
    client.delete_tag(run.info.run_id, "temp")
    assert "temp" not in client.get_run(run.info.run_id).data.tags
    client.update_run(run.info.run_id, name="parent-renamed")
    assert client.get_run(run.info.run_id).info.run_name == "parent-renamed"

    eid = exp.experiment_id
    search = lambda f, **kw: [r.info.run_name for r in client.search_runs([eid], f, **kw)]
    assert search("metrics.acc > 0.6") == ["parent-renamed"]
    assert search("params.lr = '0.01'") == ["child"]
    assert search("tags.env = 'prod' and metrics.loss < 1") == ["parent-renamed"]
    assert search("tags.owner IS NULL") == ["child"]
    assert search("attributes.run_name LIKE 'par%'") == ["parent-renamed"]
    assert search(f"attributes.run_id IN ('{child.info.run_id}')") == ["child"]
    assert search("", order_by=["metrics.acc ASC"]) == ["child", "parent-renamed"]
    assert search("", order_by=["metrics.acc DESC"]) == ["parent-renamed", "child"]
    df = mlflow.search_runs(experiment_names=["scen-runs"], filter_string="params.model = 'rf'")
    assert list(df["tags.mlflow.runName"]) == ["parent-renamed"]

    with pytest.raises(MlflowException) as e:
        client.search_runs([eid], "metrics.acc > 1 OR metrics.acc < 0")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"

    client.delete_run(child.info.run_id)
    assert search("") == ["parent-renamed"]
    deleted = client.search_runs([eid], "", run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [child.info.run_id]
    client.restore_run(child.info.run_id)
    assert len(search("")) == 2

    with pytest.raises(MlflowException) as e:
        client.get_run("0" * 32)
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_run_search_pagination(server, client):
    eid = client.create_experiment("scen-pages")
    for i in range(25):
        r = client.create_run(eid, run_name=f"r{i:02d}")
        client.log_metric(r.info.run_id, "m", i)
    seen, token = [], None
    while True:
        page = client.search_runs([eid], order_by=["metrics.m DESC"], max_results=10, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == [f"r{i:02d}" for i in reversed(range(25))]


def test_datasets(server, client, tmp_path):
    mlflow.set_experiment("scen-datasets")
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    csv = tmp_path / "train.csv"
    df.to_csv(csv, index=False)
    dataset = mlflow.data.from_pandas(df, name="train-set", source=str(csv))
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # same dataset again: one input
    got = client.get_run(run.info.run_id)
    assert len(got.inputs.dataset_inputs) == 1
    di = got.inputs.dataset_inputs[0]
    assert di.dataset.name == "train-set" and di.dataset.digest == dataset.digest
    assert {t.key: t.value for t in di.tags}["mlflow.data.context"] == "training"
    eid = got.info.experiment_id
    assert len(client.search_runs([eid], "dataset.name = 'train-set'")) == 1
    assert len(client.search_runs([eid], "dataset.context = 'evaluation'")) == 0
    r = requests.post(
        f"{server.url}/ajax-api/2.0/mlflow/experiments/search-datasets", json={"experiment_ids": [eid]}
    )
    assert r.status_code == 200
    assert r.json()["dataset_summaries"][0]["context"] == "training"


def test_artifacts(server, client, tmp_path):
    mlflow.set_experiment("scen-artifacts")
    payload = os.urandom(6 * 1024 * 1024 + 123)
    big = tmp_path / "big.bin"
    big.write_bytes(payload)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big))
        mlflow.log_artifact(str(big), artifact_path="sub/dir")
        mlflow.log_dict({"a": 1}, "config/params.json")
        mlflow.log_text("hello", "notes.txt")
    rid = run.info.run_id
    top = {(a.path, a.is_dir) for a in client.list_artifacts(rid)}
    assert top == {("big.bin", False), ("sub", True), ("config", True), ("notes.txt", False)}
    assert [(a.path, a.file_size) for a in client.list_artifacts(rid, "sub/dir")] == [("sub/dir/big.bin", len(payload))]
    (tmp_path / "dl").mkdir()
    out = client.download_artifacts(rid, "sub", str(tmp_path / "dl"))
    assert open(os.path.join(out, "dir", "big.bin"), "rb").read() == payload
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/config/params.json") == {"a": 1}
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes.txt") == "hello"
    # The UI's download route.
    r = requests.get(f"{server.url}/get-artifact", params={"run_id": rid, "path": "notes.txt"})
    assert r.status_code == 200 and r.text == "hello"
    # Hostile paths through the REST listing.
    r = requests.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": rid, "path": "../../etc"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_metric_history_bulk_interval(server, client):
    eid = client.create_experiment("scen-interval")
    run = client.create_run(eid)
    rid = run.info.run_id
    for chunk in range(10):
        client.log_batch(rid, metrics=[Metric("loss", float(i), i, i) for i in range(chunk * 1000, (chunk + 1) * 1000)])
    r = requests.get(
        f"{server.url}/api/2.0/mlflow/metrics/get-history-bulk-interval",
        params={"run_ids": [rid], "metric_key": "loss", "max_results": 100},
    )
    assert r.status_code == 200, r.text
    steps = [m["step"] for m in r.json()["metrics"]]
    assert steps[0] == 0 and steps[-1] == 9999 and len(steps) <= 100
    r = requests.get(
        f"{server.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk",
        params={"run_id": [rid], "metric_key": "loss", "max_results": 50},
    )
    assert len(r.json()["metrics"]) == 50 and r.json()["metrics"][0]["run_id"] == rid


def test_logged_model_and_load_back(server, client):
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("scen-models")
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 1.0)
        if mlflow_major() >= 3:
            info = mlflow.sklearn.log_model(model, name="lr", serialization_format="cloudpickle")
        else:
            info = mlflow.sklearn.log_model(model, "lr")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert list(loaded.predict(X)) == [0, 0, 1, 1]
    if mlflow_major() >= 3:
        found = client.search_logged_models(experiment_ids=[run.info.experiment_id], filter_string="name = 'lr'")
        assert [m.model_id for m in found] == [info.model_id]
        client.set_logged_model_tags(info.model_id, {"stage": "candidate"})
        assert client.get_logged_model(info.model_id).tags["stage"] == "candidate"
        client.delete_logged_model_tag(info.model_id, "stage")
        assert "stage" not in client.get_logged_model(info.model_id).tags
        assert "acc" in {m.key for m in client.get_logged_model(info.model_id).metrics}
        other = client.create_logged_model(run.info.experiment_id, name="scratch", params={"k": "v"})
        client.log_model_params(other.model_id, {"k2": "v2"})
        assert client.get_logged_model(other.model_id).params == {"k": "v", "k2": "v2"}
        client.finalize_logged_model(other.model_id, mlflow.entities.LoggedModelStatus.READY)
        client.delete_logged_model(other.model_id)
        with pytest.raises(MlflowException) as e:
            client.get_logged_model(other.model_id)
        assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_cli_over_rest(server, client):
    eid = client.create_experiment("scen-cli")
    client.create_run(eid, run_name="cli-run")
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    mlflow_cli = os.path.join(os.path.dirname(sys.executable), "mlflow")
    out = subprocess.run([mlflow_cli, "experiments", "search"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "scen-cli" in out.stdout
    out = subprocess.run(
        [mlflow_cli, "runs", "list", "--experiment-id", eid], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "cli-run" in out.stdout


def test_rest_errors_are_4xx_json(server):
    base = f"{server.url}/api/2.0/mlflow"
    cases = [
        requests.post(f"{base}/runs/log-batch", json={"run_id": "x" * 32, "metrics": [{"key": "a", "value": 1, "timestamp": 1}]}),
        requests.post(f"{base}/runs/search", json={"experiment_ids": ["0"], "max_results": 50001}),
        requests.post(f"{base}/experiments/create", data="{bad", headers={"Content-Type": "application/json"}),
        requests.get(f"{base}/metrics/get-history", params={"run_id": "abc", "metric_key": "m", "max_results": -1}),
        requests.post(f"{base}/runs/search", json={"experiment_ids": ["0"], "page_token": base64.b64encode(b"{}").decode()}),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, r.text
        body = r.json()
        assert set(body) >= {"error_code", "message"}, body


def test_file_artifact_root_is_written_by_the_client_and_listed_by_the_server(tmp_path):
    """`--default-artifact-root` as a local path: the client writes there itself, as with MLflow."""
    from conftest import Server
    from mlflow.tracking import MlflowClient

    root = tmp_path / "shared-artifacts"
    srv = Server(str(tmp_path), "--default-artifact-root", f"file://{root}", "--no-serve-artifacts")
    try:
        c = MlflowClient(tracking_uri=srv.url)
        eid = c.create_experiment("file-root")
        assert c.get_experiment(eid).artifact_location == f"file://{root}/{eid}"
        run = c.create_run(eid)
        f = tmp_path / "report.txt"
        f.write_text("local bytes")
        c.log_artifact(run.info.run_id, str(f), artifact_path="reports")
        assert (root / eid / run.info.run_id / "artifacts" / "reports" / "report.txt").read_text() == "local bytes"
        listed = c.list_artifacts(run.info.run_id, "reports")
        assert [(a.path, a.file_size) for a in listed] == [("reports/report.txt", 11)]
        r = requests.get(f"{srv.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": "x"})
        assert r.status_code == 503, "the proxy is off with --no-serve-artifacts"
    finally:
        srv.stop()
    assert srv.proc.returncode == 0
