"""MLflow 3 tracing through the official client against the real binary: decorated functions
with nested spans and errors, `get_trace` with its spans, `search_traces` by status, tags, run
and time, trace tags, links to runs, deletion; spans sent over OTLP by the client itself and by
the OpenTelemetry SDK's exporter."""
import os
import time

import pytest
import requests

from conftest import mlflow_major

pytestmark = pytest.mark.skipif(mlflow_major() < 3, reason="the v3 trace API came with MLflow 3")

# Traces are exported synchronously, so each call sees the previous one's trace on the server.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"


@pytest.fixture(scope="module")
def srv(server):
    """conftest's server (a fresh plumb for this module; no 5xx allowed)."""
    return server


def test_traces_through_the_official_client(srv):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(srv.url)
    client = MlflowClient(srv.url)
    exp = mlflow.set_experiment("llm-app").experiment_id

    @mlflow.trace(span_type="RETRIEVER")
    def retrieve(q):
        return [f"doc about {q}"]

    @mlflow.trace(span_type="CHAIN")
    def answer(q):
        docs = retrieve(q)
        with mlflow.start_span(name="generate", span_type="LLM") as span:
            span.set_inputs({"docs": docs})
            span.set_outputs({"text": "42"})
        return "42"

    @mlflow.trace
    def broken(q):
        raise ValueError("the model is down")

    before = int(time.time() * 1000)
    with mlflow.start_run() as run:
        assert answer("life") == "42"
    ok_id = mlflow.get_last_active_trace_id()
    with pytest.raises(ValueError):
        broken("x")
    err_id = mlflow.get_last_active_trace_id()

    trace = mlflow.get_trace(ok_id)
    assert trace.info.state == "OK" and trace.info.experiment_id == exp
    # The client sent its spans over OTLP (plumb answers /version as MLflow 3.17.2).
    assert trace.info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert {s.span_type for s in trace.data.spans} == {"CHAIN", "RETRIEVER", "LLM"}
    assert trace.info.request_time >= before and trace.info.execution_duration is not None
    assert sorted(s.name for s in trace.data.spans) == ["answer", "generate", "retrieve"]
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.name == "answer" and root.inputs == {"q": "life"} and root.outputs == "42"
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    assert trace.info.tags["mlflow.traceName"] == "answer"
    failed = mlflow.get_trace(err_id)
    assert failed.info.state == "ERROR"
    assert any(e.name == "exception" for s in failed.data.spans for e in s.events)

    every = mlflow.search_traces(locations=[exp], return_type="list")
    assert [t.info.trace_id for t in every] == [err_id, ok_id], "newest first"
    assert len(every[1].data.spans) == 3, "search returns spans too"
    assert [t.info.trace_id for t in mlflow.search_traces(
        locations=[exp], filter_string="trace.status = 'ERROR'", return_type="list")] == [err_id]
    assert [t.info.trace_id for t in mlflow.search_traces(
        locations=[exp], run_id=run.info.run_id, return_type="list")] == [ok_id]
    assert [t.info.trace_id for t in mlflow.search_traces(
        locations=[exp], filter_string="trace.name = 'broken'", return_type="list")] == [err_id]
    assert [t.info.trace_id for t in mlflow.search_traces(
        locations=[exp], order_by=["timestamp_ms ASC"], return_type="list")] == [ok_id, err_id]
    assert len(mlflow.search_traces(
        locations=[exp], filter_string=f"trace.timestamp_ms > {before - 1}", return_type="list")) == 2
    page = client.search_traces(locations=[exp], max_results=1)
    assert len(page) == 1 and page.token
    assert len(client.search_traces(locations=[exp], max_results=1, page_token=page.token)) == 1
    df = mlflow.search_traces(locations=[exp])
    assert len(df) == 2 and "trace_id" in df.columns

    client.set_trace_tag(ok_id, "reviewed", "yes")
    tagged = mlflow.search_traces(locations=[exp], filter_string="tags.reviewed = 'yes'", return_type="list")
    assert [t.info.trace_id for t in tagged] == [ok_id]
    client.delete_trace_tag(ok_id, "reviewed")
    assert "reviewed" not in mlflow.get_trace(ok_id).info.tags
    with pytest.raises(MlflowException, match="No trace tag with key 'reviewed'"):
        client.delete_trace_tag(ok_id, "reviewed")
    with pytest.raises(MlflowException, match="Invalid entity type"):
        mlflow.search_traces(locations=[exp], filter_string="weird.x = 'y'", return_type="list")

    other = client.create_run(exp)
    client.link_traces_to_run([err_id], other.info.run_id)
    linked = mlflow.search_traces(locations=[exp], run_id=other.info.run_id, return_type="list")
    assert [t.info.trace_id for t in linked] == [err_id]

    assert client.delete_traces(exp, trace_ids=[err_id]) == 1
    assert [t.info.trace_id for t in mlflow.search_traces(locations=[exp], return_type="list")] == [ok_id]
    assert client.delete_traces(exp, max_timestamp_millis=int(time.time() * 1000)) == 1
    assert mlflow.search_traces(locations=[exp], return_type="list") == []
    assert mlflow.get_trace(ok_id) is None  # the client warns and answers None for a gone trace
    r = requests.get(f"{srv.url}/api/3.0/mlflow/traces/{ok_id}")
    assert r.status_code == 404 and r.json()["message"] == f"Trace with ID '{ok_id}' not found."


def test_an_opentelemetry_sdk_exports_over_otlp(srv):
    """Any OpenTelemetry SDK exports to plumb (`POST /v1/traces`, protobuf, the experiment in
    `x-mlflow-experiment-id`); the official client then reads the traces with their spans."""
    import json as _json

    import mlflow
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    mlflow.set_tracking_uri(srv.url)
    exp = mlflow.set_experiment("otel-service").experiment_id
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    exporter = OTLPSpanExporter(endpoint=f"{srv.url}/v1/traces", headers={"x-mlflow-experiment-id": exp})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("handle-request") as root:
        root.set_attribute("http.method", "POST")
        root.set_attribute("mlflow.spanInputs", _json.dumps({"cart": 3}))
        with tracer.start_as_current_span("score") as child:
            child.set_attribute("model.version", 7)
            child.set_attribute("gen_ai.usage.input_tokens", 12)
            child.set_attribute("gen_ai.usage.output_tokens", 3)
            child.add_event("cache-miss", {"key": "abc"})
    with tracer.start_as_current_span("fail") as bad:
        bad.set_status(Status(StatusCode.ERROR, "timeout"))
    provider.shutdown()
    ok_id = "tr-" + format(root.get_span_context().trace_id, "032x")
    bad_id = "tr-" + format(bad.get_span_context().trace_id, "032x")

    traces = mlflow.search_traces(locations=[exp], return_type="list")
    assert sorted(t.info.trace_id for t in traces) == sorted([ok_id, bad_id])
    trace = mlflow.get_trace(ok_id)
    assert trace.info.state == "OK" and trace.info.tags["mlflow.traceName"] == "handle-request"
    assert trace.info.execution_duration is not None and "cart" in trace.info.request_preview
    # Token counts of the GenAI conventions become the trace's, as MLflow's server does.
    assert trace.info.token_usage == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    r = requests.post(f"{srv.url}/api/3.0/mlflow/traces/metrics", json={
        "experiment_ids": [exp], "view_type": "TRACES", "metric_name": "total_tokens",
        "aggregations": [{"aggregation_type": "SUM"}]})
    assert r.json()["data_points"][0]["values"] == {"SUM": 15.0}, r.text
    spans = {s.name: s for s in trace.data.spans}
    assert set(spans) == {"handle-request", "score"}
    assert spans["score"].parent_id == spans["handle-request"].span_id
    # A plain SDK's string attribute stays a string (as MLflow reads it).
    assert spans["handle-request"].inputs == '{"cart": 3}'
    assert spans["handle-request"].get_attribute("http.method") == "POST"
    assert spans["score"].get_attribute("model.version") == 7
    assert [e.name for e in spans["score"].events] == ["cache-miss"]
    assert mlflow.get_trace(bad_id).info.state == "ERROR"
    assert [t.info.trace_id for t in mlflow.search_traces(
        locations=[exp], filter_string="trace.status = 'ERROR'", return_type="list")] == [bad_id]
    artifact = requests.get(f"{srv.url}/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": ok_id})
    assert artifact.status_code == 200 and len(artifact.json()["spans"]) == 2
    # Span filters: one span meets every span clause.
    def found(f):
        return sorted(t.info.trace_id for t in mlflow.search_traces(locations=[exp], filter_string=f, return_type="list"))
    assert found("span.name = 'score'") == [ok_id]
    assert found("span.name = 'score' AND span.status = 'ERROR'") == []
    assert found("span.status = 'ERROR'") == [bad_id]
    assert found("span.attributes.`http.method` = 'POST'") == [ok_id]
    assert found("span.attributes.`model.version` = '7'") == [ok_id]
    assert found("span.attributes.`http.method` LIKE '%PO%'") == [ok_id]

    # A gzip-compressed protobuf export, as the exporter sends it when asked.
    from opentelemetry.exporter.otlp.proto.http import Compression
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{srv.url}/v1/traces", headers={"x-mlflow-experiment-id": exp},
        compression=Compression.Gzip)))
    with provider.get_tracer("test").start_as_current_span("zipped") as zipped:
        zipped.set_attribute("size", "large")
    provider.shutdown()
    zipped_id = "tr-" + format(zipped.get_span_context().trace_id, "032x")
    assert mlflow.get_trace(zipped_id).data.spans[0].name == "zipped"

    # OTLP JSON (hex ids), and the mistakes an exporter can make.
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "json-span", "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000", "status": {"code": 1}}]}]}]}
    r = requests.post(f"{srv.url}/v1/traces", json=body, headers={"x-mlflow-experiment-id": exp})
    assert r.status_code == 200, r.text
    assert mlflow.get_trace("tr-5b8efff798038103d269b633813fc60c").data.spans[0].name == "json-span"
    assert requests.post(f"{srv.url}/v1/traces", json=body).status_code == 400
    r = requests.post(f"{srv.url}/v1/traces", data=b"\x00\xff garbage",
                      headers={"x-mlflow-experiment-id": exp, "Content-Type": "application/x-protobuf"})
    assert r.status_code == 400
    r = requests.post(f"{srv.url}/v1/traces", data="x", headers={"x-mlflow-experiment-id": exp, "Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type" in r.json()["message"]
    r = requests.post(f"{srv.url}/v1/traces", json=body, headers={"x-mlflow-experiment-id": "999"})
    assert r.status_code == 404


def test_feedback_and_expectations(srv):
    """Assessments through the official client: feedback and expectations logged, read with
    the trace, updated, overridden and deleted."""
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    mlflow.set_tracking_uri(srv.url)
    mlflow.set_experiment("judged")

    @mlflow.trace
    def reply(q):
        return "Paris"

    reply("capital of France?")
    tid = mlflow.get_last_active_trace_id()
    human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="reviewer@example.com")
    fb = mlflow.log_feedback(trace_id=tid, name="correct", value=True, source=human, rationale="checked an atlas")
    ex = mlflow.log_expectation(trace_id=tid, name="expected_answer", value="Paris", source=human)
    got = mlflow.get_assessment(tid, fb.assessment_id)
    assert got.name == "correct" and got.value is True and got.rationale == "checked an atlas"
    assert got.source.source_id == "reviewer@example.com" and got.valid
    trace = mlflow.get_trace(tid)
    names = sorted(a.name for a in trace.info.assessments)
    assert names == ["correct", "expected_answer"]
    assert mlflow.get_assessment(tid, ex.assessment_id).value == "Paris"

    from mlflow.entities import Feedback
    updated = mlflow.update_assessment(trace_id=tid, assessment_id=fb.assessment_id,
                                       assessment=Feedback(name="correct", value=False, rationale="re-checked"))
    assert updated.value is False and updated.rationale == "re-checked"
    judge = AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id="gpt")
    newer = mlflow.override_feedback(trace_id=tid, assessment_id=fb.assessment_id, value=True,
                                     rationale="the judge disagrees", source=judge)
    assert mlflow.get_assessment(tid, fb.assessment_id).valid is False
    assert newer.overrides == fb.assessment_id
    mlflow.delete_assessment(trace_id=tid, assessment_id=newer.assessment_id)
    assert mlflow.get_assessment(tid, fb.assessment_id).valid is True
    # Searches by assessment, through the client.
    reply("second question")
    other = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(trace_id=other, name="rating", value=2, source=human)
    mlflow.log_feedback(trace_id=tid, name="rating", value=5, source=human)
    exp = mlflow.get_experiment_by_name("judged").experiment_id

    def found(f):
        return sorted(t.info.trace_id for t in mlflow.search_traces(locations=[exp], filter_string=f, return_type="list"))
    assert found("feedback.rating > 3") == [tid]
    assert found("feedback.rating = 2") == [other]
    assert found("feedback.correct = 'false'") == [tid]  # updated to False above
    assert found("expectation.expected_answer = 'Paris'") == [tid]
    assert found("feedback.correct IS NULL") == [other]

    # Trace metrics and filter correlation through the client's store and tracing client.
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
    from mlflow.tracing.client import TracingClient
    from mlflow.tracking._tracking_service.utils import _get_store
    points = _get_store().query_trace_metrics(
        experiment_ids=[exp], view_type=MetricViewType.ASSESSMENTS, metric_name="assessment_value",
        aggregations=[MetricAggregation(AggregationType.AVG), MetricAggregation(AggregationType.PERCENTILE, 50)],
        dimensions=["assessment_name"], filters=["assessment.name = 'rating'"])
    assert [(p.dimensions, p.values) for p in points] == [
        ({"assessment_name": "rating"}, {"AVG": 3.5, "P50.0": 3.5})]  # as MLflow names it
    points = _get_store().query_trace_metrics(
        experiment_ids=[exp], view_type=MetricViewType.TRACES, metric_name="trace_count",
        aggregations=[MetricAggregation(AggregationType.COUNT)])
    assert points[0].values == {"COUNT": 2.0}
    corr = TracingClient().calculate_trace_filter_correlation(
        experiment_ids=[exp], filter_string1="feedback.rating > 3", filter_string2="expectation.expected_answer = 'Paris'")
    assert (corr.filter1_count, corr.filter2_count, corr.joint_count, corr.total_count) == (1, 1, 1, 2)
    assert corr.npmi == 1.0
    r = requests.get(f"{srv.url}/api/3.0/mlflow/traces/{tid}/assessments/a-nope")
    assert r.status_code == 404
    r = requests.post(f"{srv.url}/api/3.0/mlflow/traces/tr-nope/assessments",
                      json={"assessment": {"assessment_name": "x", "feedback": {"value": 1}}})
    assert r.status_code == 404
    r = requests.post(f"{srv.url}/api/3.0/mlflow/traces/{tid}/assessments",
                      json={"assessment": {"assessment_name": "x"}})
    assert r.status_code == 400
