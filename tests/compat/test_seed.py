"""The user's seed script, run as-is by the official client, then checked through the client."""
import os
import subprocess
import sys

import numpy as np
from conftest import HERE, mlflow_major


def test_seed_script_runs_and_its_model_loads_back(server, client):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "seed_script.py")],
        env={**os.environ, "MLFLOW_TRACKING_URI": server.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = next(l.split(": ")[1] for l in out.stdout.splitlines() if l.startswith("Run ID: "))

    exp = client.get_experiment_by_name("iris-classification")
    assert exp is not None and exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    run = client.get_run(run_id)
    assert run.info.run_name == "rf-baseline"
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == {"accuracy", "precision", "recall", "f1_score"}
    assert run.data.params == {"n_estimators": "50", "random_state": "42"}
    assert run.data.tags["mlflow.runName"] == "rf-baseline"

    import mlflow
    from sklearn.datasets import load_iris

    if mlflow_major() >= 3:
        assert run.outputs.model_outputs, "log_model links a logged model as a run output"
        model_id = run.outputs.model_outputs[0].model_id
        logged = client.get_logged_model(model_id)
        assert logged.status.to_proto() == 2 or str(logged.status).endswith("READY")
        assert logged.source_run_id == run_id
        assert {m.key for m in logged.metrics} == {"accuracy", "precision", "recall", "f1_score"}
        uri = f"models:/{model_id}"
    else:
        assert "mlflow.log-model.history" in run.data.tags
        names = {a.path for a in client.list_artifacts(run_id, "model")}
        assert {"model/MLmodel", "model/model.pkl"} <= names
        uri = f"runs:/{run_id}/model"
    model = mlflow.sklearn.load_model(uri)
    X, y = load_iris(return_X_y=True)
    assert (model.predict(X) == y).mean() > 0.9
    pyfunc = mlflow.pyfunc.load_model(uri)
    assert np.asarray(pyfunc.predict(X[:5])).shape == (5,)
