"""MLflow 2.x tracing through the official 2.x client against the real binary: the v2 trace
API (start, end, get info, search), spans uploaded as the trace's artifact and read back,
tags, deletion. Under the 3.x client the same routes are checked by the differential test."""
import os

import pytest
import requests

from conftest import mlflow_major

pytestmark = pytest.mark.skipif(mlflow_major() != 2, reason="the v2 trace API is the 2.x client's")

os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"


@pytest.fixture(scope="module")
def srv(server):
    """conftest's server (a fresh plumb for this module; no 5xx allowed)."""
    return server


def test_traces_through_the_2x_client(srv):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(srv.url)
    exp = mlflow.set_experiment("traced-v2").experiment_id

    @mlflow.trace(name="answer")
    def answer(q):
        with mlflow.start_span(name="retrieve") as span:
            span.set_inputs({"q": q})
            span.set_outputs(["doc"])
        return q.upper()

    @mlflow.trace
    def broken():
        raise ValueError("boom")

    assert answer("hi") == "HI"
    with pytest.raises(ValueError):
        broken()

    client = MlflowClient()
    traces = client.search_traces(experiment_ids=[exp])
    assert len(traces) == 2
    by_name = {t.info.tags["mlflow.traceName"]: t for t in traces}
    ok = by_name["answer"]
    assert ok.info.status == "OK" and ok.info.execution_time_ms >= 0
    assert [s.name for s in ok.data.spans] == ["answer", "retrieve"]
    assert ok.data.spans[1].inputs == {"q": "hi"}
    assert by_name["broken"].info.status == "ERROR"

    rid = ok.info.request_id
    got = client.get_trace(rid)
    assert got.info.request_id == rid and len(got.data.spans) == 2
    client.set_trace_tag(rid, "reviewed", "yes")
    assert client.get_trace(rid).info.tags["reviewed"] == "yes"
    assert [t.info.request_id for t in client.search_traces(
        experiment_ids=[exp], filter_string="tags.reviewed = 'yes'")] == [rid]
    assert [t.info.request_id for t in client.search_traces(
        experiment_ids=[exp], filter_string="status = 'ERROR'")] == [by_name["broken"].info.request_id]
    client.delete_trace_tag(rid, "reviewed")
    assert "reviewed" not in client.get_trace(rid).info.tags

    # The v2 calls by hand: errors as MLflow answers them.
    r = requests.get(f"{srv.url}/api/2.0/mlflow/traces/nope/info")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(f"{srv.url}/api/2.0/mlflow/traces", json={"experiment_id": "999", "timestamp_ms": 1})
    assert r.status_code == 404
    r = requests.patch(f"{srv.url}/api/2.0/mlflow/traces/{rid}", json={"status": "SIDEWAYS"})
    assert r.status_code == 400
    r = requests.get(f"{srv.url}/api/2.0/mlflow/traces", params={"experiment_ids": exp, "max_results": 501})
    assert r.status_code == 400

    assert client.delete_traces(experiment_id=exp, request_ids=[rid]) == 1
    assert len(client.search_traces(experiment_ids=[exp])) == 1
