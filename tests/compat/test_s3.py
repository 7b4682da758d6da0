"""Artifacts in an S3 bucket through plumb's proxy, with the official client: a server with
`--artifacts-destination s3://bucket/prefix` in front of a real S3-protocol server in its own
process (moto's server mode; scripts/test.sh installs it and sets PLUMB_TEST_MOTO_SERVER)."""
import filecmp
import os
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from conftest import Server, mlflow_major
from sklearn.linear_model import LogisticRegression

import mlflow
from mlflow.tracking import MlflowClient


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    exe = os.environ.get("PLUMB_TEST_MOTO_SERVER")
    assert exe and os.path.exists(exe), "PLUMB_TEST_MOTO_SERVER must name moto_server (scripts/test.sh installs it)"
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline, "moto_server did not come up"
            time.sleep(0.05)
    req = urllib.request.Request(f"{endpoint}/plumb-artifacts", method="PUT")
    urllib.request.urlopen(req)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_artifacts_and_models_round_trip_through_an_s3_bucket(tmp_path, s3_endpoint):
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    srv = Server(str(tmp_path), "--artifacts-destination", "s3://plumb-artifacts/team", env=env)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        mlflow.set_tracking_uri(srv.url)
        client = MlflowClient(tracking_uri=srv.url)
        mlflow.set_experiment("s3-artifacts")
        big = tmp_path / "weights.bin"
        big.write_bytes(os.urandom(12 * 1024 * 1024))
        with mlflow.start_run() as run:
            mlflow.log_artifact(str(big), artifact_path="blobs")
            mlflow.log_text("hello", "notes/readme.txt")
            model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
            if mlflow_major() >= 3:
                info = mlflow.sklearn.log_model(model, name="model", registered_model_name="s3-churn", serialization_format="cloudpickle")
            else:
                info = mlflow.sklearn.log_model(model, "model", registered_model_name="s3-churn")
        files = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "blobs")}
        assert files == {"blobs/weights.bin": 12 * 1024 * 1024}
        out = tmp_path / "down"
        got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="blobs/weights.bin", dst_path=str(out))
        assert filecmp.cmp(got, big, shallow=False)
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/readme.txt") == "hello"
        loaded = mlflow.pyfunc.load_model("models:/s3-churn/1")
        assert list(loaded.predict(np.array([[0.0], [3.0]]))) == [0, 1]
        assert info.model_uri
        # The bytes are in the bucket, under the prefix.
        exp_id = run.info.experiment_id
        key = f"team/{exp_id}/{run.info.run_id}/artifacts/blobs/weights.bin"
        with urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/plumb-artifacts/{key}", method="HEAD")) as r:
            assert int(r.headers["Content-Length"]) == 12 * 1024 * 1024
    finally:
        srv.stop()
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
        errors = srv.server_errors()
        assert not errors, "plumb answered 5xx:\n" + "".join(errors)
