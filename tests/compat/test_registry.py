"""The model registry through the official client: register, aliases, stages, tags, search,
rename, delete, load by alias and predict, and the errors for what does not exist."""
import numpy as np
import pytest
import requests
from conftest import mlflow_major
from sklearn.linear_model import LogisticRegression

import mlflow
from mlflow.exceptions import MlflowException

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = np.array([0, 0, 1, 1])


def log_model(name, registered_model_name=None):
    model = LogisticRegression().fit(X, Y)
    if mlflow_major() >= 3:
        return mlflow.sklearn.log_model(
            model, name=name, registered_model_name=registered_model_name, serialization_format="cloudpickle"
        )
    return mlflow.sklearn.log_model(model, name, registered_model_name=registered_model_name)


def error_code(exc):
    return getattr(exc.value, "error_code", None)


def test_register_alias_load_and_predict(server, client):
    mlflow.set_experiment("reg-churn")
    with mlflow.start_run() as run:
        info = log_model("model", registered_model_name="churn")
    v1 = client.get_model_version("churn", "1")
    assert v1.run_id == run.info.run_id and v1.status == "READY" and v1.current_stage == "None"

    # A second version through register_model.
    with mlflow.start_run() as run2:
        info2 = log_model("model")
    mv2 = mlflow.register_model(info2.model_uri, "churn")
    assert mv2.version == "2"
    if mlflow_major() >= 3:
        tag = client.get_logged_model(info2.model_id).tags["mlflow.modelVersions"]
        assert '"name": "churn"' in tag

    client.set_registered_model_alias("churn", "champion", "1")
    assert client.get_model_version_by_alias("churn", "champion").version == "1"
    client.set_registered_model_alias("churn", "champion", "2")  # move it
    assert client.get_model_version_by_alias("churn", "champion").version == "2"
    assert client.get_registered_model("churn").aliases == {"champion": "2"}
    loaded = mlflow.pyfunc.load_model("models:/churn@champion")
    assert list(loaded.predict(X)) == [0, 0, 1, 1]
    assert list(mlflow.sklearn.load_model("models:/churn/1").predict(X)) == [0, 0, 1, 1]
    client.delete_registered_model_alias("churn", "champion")
    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias("churn", "champion")
    assert error_code(e) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException):
        client.set_registered_model_alias("churn", "latest", "1")

    # Tags and descriptions.
    client.set_registered_model_tag("churn", "team", "growth")
    client.set_model_version_tag("churn", "1", "validated", "yes")
    client.update_registered_model("churn", description="churn model")
    client.update_model_version("churn", "1", description="first")
    rm = client.get_registered_model("churn")
    assert rm.tags == {"team": "growth"} and rm.description == "churn model"
    mv = client.get_model_version("churn", "1")
    assert mv.tags == {"validated": "yes"} and mv.description == "first"
    client.delete_model_version_tag("churn", "1", "validated")
    client.delete_registered_model_tag("churn", "team")
    assert client.get_model_version("churn", "1").tags == {}

    # Stages (deprecated, still served).
    client.transition_model_version_stage("churn", "1", "Production")
    client.transition_model_version_stage("churn", "2", "production", archive_existing_versions=True)
    assert client.get_model_version("churn", "1").current_stage == "Archived"
    assert client.get_model_version("churn", "2").current_stage == "Production"
    latest = client.get_latest_versions("churn", stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    uri = client.get_model_version_download_uri("churn", "2")
    assert uri.startswith("mlflow-artifacts:/")


def test_search_rename_delete_and_errors(server, client):
    mlflow.set_experiment("reg-search")
    for name in ["fraud-a", "fraud-b"]:
        with mlflow.start_run():
            log_model("model", registered_model_name=name)
    names = [m.name for m in client.search_registered_models(filter_string="name LIKE 'fraud-%'")]
    assert names == ["fraud-a", "fraud-b"]
    assert [m.name for m in client.search_registered_models(filter_string="name = 'fraud-b'")] == ["fraud-b"]
    versions = client.search_model_versions("name = 'fraud-a'")
    assert [v.version for v in versions] == ["1"]
    page = client.search_registered_models(max_results=1)
    assert len(page) == 1 and page.token

    client.rename_registered_model("fraud-b", "fraud-c")
    assert client.get_model_version("fraud-c", "1").name == "fraud-c"
    with pytest.raises(MlflowException) as e:
        client.get_registered_model("fraud-b")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_model_version("fraud-a", "1")
    with pytest.raises(MlflowException) as e:
        client.get_model_version("fraud-a", "1")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model("fraud-c")
    assert [m.name for m in client.search_registered_models(filter_string="name LIKE 'fraud-%'")] == ["fraud-a"]

    with pytest.raises(MlflowException) as e:
        client.create_registered_model("fraud-a")
    assert error_code(e) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as e:
        client.get_model_version("fraud-a", "99")
    assert error_code(e) == "RESOURCE_DOES_NOT_EXIST"


def test_sources_outside_the_run_are_refused(server, client):
    mlflow.set_experiment("reg-sources")
    client.create_registered_model("guarded")
    with mlflow.start_run() as run:
        mlflow.log_text("x", "model/MLmodel")
    base = f"{server.url}/api/2.0/mlflow/model-versions/create"
    rid = run.info.run_id
    good = {"name": "guarded", "source": f"runs:/{rid}/model", "run_id": rid}
    r = requests.post(base, json=good)
    assert r.status_code == 200, r.text
    bad_sources = [
        "file:///etc/passwd",
        "/etc",
        f"mlflow-artifacts:/{run.info.experiment_id}/{rid}/artifacts/../../other/artifacts",
        f"mlflow-artifacts:/{run.info.experiment_id}/{rid}/artifacts/%2e%2e/%2e%2e/x",
        "https://evil.example.com/model",
        "runs:/0123456789abcdef0123456789abcdef/model",
        "s3://someone-elses-bucket/model",
    ]
    for src in bad_sources:
        r = requests.post(base, json={"name": "guarded", "source": src, "run_id": rid})
        assert r.status_code == 400, (src, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert [v.version for v in client.search_model_versions("name = 'guarded'")] == ["1"]
