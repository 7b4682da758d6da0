"""Moving history from MLflow to plumb: MLflow 3.17.2's own server is filled by the official
client (experiments, runs with thousands of points, a deleted run, artifacts, the registry),
`plumb export` reads it over REST, `plumb import` writes it into a plumb store, and every entity
is compared field by field through the client against a plumb server on that store."""
import filecmp
import os
import subprocess
import tempfile

import pytest
from conftest import BACKEND, HERE, Server, fresh_database, mlflow_major
from test_differential import mlflow_server, reference  # noqa: F401  (the MLflow 3.17.2 server fixture)

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

needs_mlflow3 = pytest.mark.skipif(mlflow_major() < 3, reason="the source server is MLflow 3.17.2")

PLUMB = os.path.abspath(os.environ.get("PLUMB_BIN") or os.path.join(HERE, "..", "..", "target", "debug", "plumb"))


def plumb(*args, cwd):
    out = subprocess.run([PLUMB, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def fill(client, tmp):
    exp = client.create_experiment("migration", tags={"team": "churn"})
    other = client.create_experiment("to-delete")
    runs = []
    for i in range(3):
        run = client.create_run(exp, run_name=f"run-{i}", tags={"i": str(i)}, start_time=1_700_000_000_000 + i)
        rid = run.info.run_id
        client.log_batch(rid, params=[Param("lr", str(0.1 * (i + 1))), Param("depth", "3")])
        for chunk in range(3):
            client.log_batch(rid, metrics=[
                Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(chunk * 1000, chunk * 1000 + 1000)
            ])
        client.log_batch(rid, metrics=[Metric("acc", float("nan") if s == 3 else s / 10, 5, s) for s in range(10)])
        client.set_tag(rid, "stage", "trained")
        runs.append(rid)
    blob = tmp / "weights.bin"
    blob.write_bytes(os.urandom(2 * 1024 * 1024))
    client.log_artifact(runs[0], str(blob), artifact_path="model")
    client.log_text(runs[0], "hello", "notes/readme.txt")
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=runs[1]):
        mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="train-set"), context="training")
        # MLflow 3: a logged model with files, a metric of it on that dataset, a model input.
        from sklearn.linear_model import LinearRegression

        fitted = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
        info = mlflow.sklearn.log_model(fitted, name="regressor", params={"alpha": "0.5"},
                                        tags={"family": "linear"}, model_type="regression")
        train = mlflow.data.from_pandas(pd.DataFrame({"x": [3, 4]}), name="eval-set")
        mlflow.log_metric("r2", 0.875, step=2, model_id=info.model_id, dataset=train)
        from mlflow.entities import LoggedModelInput

        client.log_inputs(runs[0], models=[LoggedModelInput(info.model_id)])
    client.set_terminated(runs[1], "FINISHED", end_time=1_700_000_100_000)
    client.delete_run(runs[2])
    client.delete_experiment(other)

    client.create_registered_model("churn", tags={"owner": "alice"}, description="predicts churn")
    for rid in runs[:2]:
        source = client.get_run(rid).info.artifact_uri + "/model"
        client.create_model_version("churn", source, run_id=rid, tags={"validated": "yes"}, description=f"from {rid}")
    mlflow.register_model(f"models:/{info.model_id}", "churn")  # version 3, from the logged model
    client.set_registered_model_alias("churn", "champion", "2")
    client.set_model_version_tag("churn", "1", "note", "first")
    return exp, runs, info.model_id


def runs_of(client, exp):
    from mlflow.entities import ViewType

    return {r.info.run_id: r for r in client.search_runs([exp], run_view_type=ViewType.ALL, max_results=1000)}


@needs_mlflow3
def test_export_import_moves_everything(reference, tmp_path):  # noqa: F811
    source = MlflowClient(tracking_uri=reference)
    exp, run_ids, model_id = fill(source, tmp_path)

    export_dir = tmp_path / "export"
    workdir = tmp_path / "plumb"
    workdir.mkdir()
    said = plumb("export", str(export_dir), "--tracking-uri", reference, cwd=workdir)
    assert "9031 metric point(s)" in said, said
    said = plumb("import", str(export_dir), cwd=workdir)
    # Everything new but experiment 0, "Default", which every plumb store has.
    assert "imported 10 new entit(y/ies), skipped 1" in said and "1 logged model(s)" in said, said
    again = plumb("import", str(export_dir), cwd=workdir)
    assert "imported 0 new" in again, again
    # One command, straight from the server (through a temporary export folder).
    direct = plumb("import", reference, "--backend-store-uri", "sqlite:///direct.db",
                   "--artifacts-destination", "./direct-artifacts", cwd=workdir)
    assert "imported 10 new entit(y/ies), skipped 1" in direct and "9031 metric point(s)" in direct, direct
    assert not [p for p in os.listdir(workdir) if p.startswith(".plumb-import-")], "staging folder left behind"

    compare_on_plumb(source, workdir, "sqlite:///plumb.db", exp, run_ids, model_id, tmp_path / "via-export")

    # Straight from MLflow's own database file, artifacts from its --artifacts-destination.
    said = plumb("import", f"sqlite:///{reference.workdir}/mlflow.db", "--backend-store-uri", "sqlite:///fromdb.db",
                 "--artifacts-destination", "./fromdb-artifacts",
                 "--source-artifacts", os.path.join(reference.workdir, "mlartifacts"), cwd=workdir)
    assert "imported 10 new entit(y/ies), skipped 1" in said and "9031 metric point(s)" in said, said
    compare_on_plumb(source, workdir, "sqlite:///fromdb.db", exp, run_ids, model_id, tmp_path / "via-db",
                     "--artifacts-destination", "./fromdb-artifacts")


@needs_mlflow3
@pytest.mark.skipif(BACKEND != "postgres", reason="runs in the PostgreSQL pass of the suite")
def test_import_from_mlflow_on_postgresql(tmp_path):
    """MLflow 3.17.2's server on PostgreSQL, filled by the client; `plumb import postgresql://...`
    reads its database directly into a plumb store that is itself on PostgreSQL."""
    source_dir = tmp_path / "mlflow"
    source_dir.mkdir()
    workdir = tmp_path / "plumb"
    workdir.mkdir()
    with fresh_database("mlflow_src") as source_db, fresh_database("plumb_dst") as target_db, \
            mlflow_server(str(source_dir), source_db.replace("postgres://", "postgresql+psycopg2://")) as url:
        source_db = source_db.replace("postgres://", "postgresql+psycopg2://")  # as MLflow users write it
        source = MlflowClient(tracking_uri=url)
        exp, run_ids, model_id = fill(source, tmp_path)
        said = plumb("import", source_db, "--backend-store-uri", target_db,
                     "--artifacts-destination", "./pg-artifacts",
                     "--source-artifacts", str(source_dir / "mlartifacts"), cwd=workdir)
        assert "imported 10 new entit(y/ies), skipped 1" in said and "9031 metric point(s)" in said, said
        again = plumb("import", source_db, "--backend-store-uri", target_db,
                      "--artifacts-destination", "./pg-artifacts",
                      "--source-artifacts", str(source_dir / "mlartifacts"), cwd=workdir)
        assert "imported 0 new" in again, again
        compare_on_plumb(source, workdir, target_db, exp, run_ids, model_id, tmp_path / "via-pg",
                         "--artifacts-destination", "./pg-artifacts")


def compare_on_plumb(source, workdir, store, exp, run_ids, model_id, tmp_path, *flags):
    """Starts plumb on `store` and compares every entity with the source server's."""
    tmp_path.mkdir()
    srv = Server(str(workdir), "--backend-store-uri", store, *flags)
    try:
        target = MlflowClient(tracking_uri=srv.url)
        from mlflow.entities import ViewType

        def exps(c):
            return {e.experiment_id: e for e in c.search_experiments(view_type=ViewType.ALL)}

        want, got = exps(source), exps(target)
        assert set(want) == set(got)
        for eid, e in want.items():
            g = got[eid]
            assert (g.name, g.lifecycle_stage) == (e.name, e.lifecycle_stage)
            if eid != "0":  # every store has its own "Default"; it is not replaced
                assert (g.tags, g.creation_time, g.last_update_time) == (e.tags, e.creation_time, e.last_update_time)

        want, got = runs_of(source, exp), runs_of(target, exp)
        assert set(want) == set(got) == set(run_ids)
        assert any(w.inputs.dataset_inputs for w in want.values()), "the source has a dataset input"
        for rid, w in want.items():
            g = got[rid]
            for field in ("run_name", "experiment_id", "status", "start_time", "end_time", "user_id", "lifecycle_stage", "artifact_uri"):
                assert getattr(g.info, field) == getattr(w.info, field), (rid, field)
            assert g.data.params == w.data.params
            def inputs(r):
                return (sorted((d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
                                d.dataset.schema, sorted((t.key, t.value) for t in d.tags))
                               for d in r.inputs.dataset_inputs),
                        sorted(m.model_id for m in r.inputs.model_inputs or []),
                        sorted((o.model_id, o.step) for o in (r.outputs.model_outputs if r.outputs else [])))
            assert inputs(target.get_run(rid)) == inputs(source.get_run(rid)), rid
            assert g.data.tags == w.data.tags
            assert g.data.metrics.keys() == w.data.metrics.keys()
            for key in w.data.metrics:
                hw = sorted((m.step, m.timestamp, str(m.value)) for m in source.get_metric_history(rid, key))
                hg = sorted((m.step, m.timestamp, str(m.value)) for m in target.get_metric_history(rid, key))
                assert hw == hg, (rid, key)
                assert len(hw) in (3000, 10, 1)

        # Artifacts, byte for byte.
        for sub in ("model", "notes"):
            assert [(f.path, f.file_size) for f in target.list_artifacts(run_ids[0], sub)] == [
                (f.path, f.file_size) for f in source.list_artifacts(run_ids[0], sub)
            ]
        down_w = source.download_artifacts(run_ids[0], "model/weights.bin", str(tmp_path / "w"))
        down_g = target.download_artifacts(run_ids[0], "model/weights.bin", str(tmp_path / "g"))
        assert filecmp.cmp(down_w, down_g, shallow=False)

        # The MLflow 3 logged model: its record, metrics and files (loaded and run).
        w, g = source.get_logged_model(model_id), target.get_logged_model(model_id)
        for field in ("name", "experiment_id", "status", "status_message", "model_type", "source_run_id",
                      "creation_timestamp", "last_updated_timestamp", "tags", "params"):
            assert getattr(g, field) == getattr(w, field), field
        def points(model):
            return sorted((m.key, str(m.value), m.step, m.timestamp, m.run_id, m.dataset_name or "",
                           m.dataset_digest or "") for m in model.metrics)
        assert points(g) == points(w)
        assert "r2" in {m.key for m in g.metrics}
        import mlflow

        mlflow.set_tracking_uri(target.tracking_uri)
        try:
            for uri in (f"models:/{model_id}", "models:/churn/3"):
                assert [round(float(p), 6) for p in mlflow.sklearn.load_model(uri).predict([[10.0]])] == [21.0], uri
        finally:
            mlflow.set_tracking_uri(source.tracking_uri)

        # The registry.
        w, g = source.get_registered_model("churn"), target.get_registered_model("churn")
        assert (g.description, g.tags, g.aliases, g.creation_timestamp) == (w.description, w.tags, w.aliases, w.creation_timestamp)
        for v in ("1", "2", "3"):
            w, g = source.get_model_version("churn", v), target.get_model_version("churn", v)
            for field in ("version", "current_stage", "description", "source", "run_id", "status", "tags", "creation_timestamp", "aliases"):
                assert getattr(g, field) == getattr(w, field), (v, field)
        assert target.get_model_version_by_alias("churn", "champion").version == "2"
    finally:
        srv.stop()
    assert not srv.server_errors()


def test_import_from_a_file_store(tmp_path, monkeypatch):
    """`plumb import ./mlruns`: what the client wrote with `file:./mlruns` (the 2.22.4 client in
    the mlflow2 run) arrives whole: deleted experiments and runs, every point, artifacts, the
    registry (sources moved along with the artifacts)."""
    import mlflow
    from mlflow.entities import ViewType

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for the opt-in
    store = tmp_path / "mlruns"
    source = MlflowClient(tracking_uri=f"file:{store}")
    exp = source.create_experiment("fs", tags={"team": "x"})
    run = source.create_run(exp, run_name="r1", tags={"t": "v"})
    rid = run.info.run_id
    source.log_batch(rid, params=[Param("lr", "0.1")])
    for chunk in range(2):
        source.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(chunk * 1000, chunk * 1000 + 1000)])
    source.log_metric(rid, "odd", float("nan"), timestamp=5, step=0)
    blob = tmp_path / "weights.bin"
    blob.write_bytes(os.urandom(300_000))
    source.log_artifact(rid, str(blob), "model")
    model_id = None
    if mlflow_major() >= 3:  # a logged model with its files, a dataset input
        import pandas as pd
        from sklearn.linear_model import LinearRegression

        mlflow.set_tracking_uri(f"file:{store}")
        with mlflow.start_run(run_id=rid):
            fitted = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
            model_id = mlflow.sklearn.log_model(fitted, name="lin", params={"a": "1"}).model_id
            ds = mlflow.data.from_pandas(pd.DataFrame({"x": [1]}), name="train")
            mlflow.log_input(ds, context="training")
            mlflow.log_metric("mse", 0.25, step=1, model_id=model_id, dataset=ds)
    source.set_terminated(rid, "FINISHED")
    gone_run = source.create_run(exp, run_name="r2").info.run_id
    source.delete_run(gone_run)
    source.delete_experiment(source.create_experiment("gone"))
    source.create_registered_model("m", tags={"o": "a"}, description="multi\nline")
    source.create_model_version("m", run.info.artifact_uri + "/model", run_id=rid, tags={"vt": "1"})
    source.set_registered_model_alias("m", "champion", "1")

    workdir = tmp_path / "plumb"
    workdir.mkdir()
    said = plumb("import", str(store), cwd=workdir)
    if model_id is None:
        assert "2001 metric point(s)" in said and "1 artifact file(s)" in said, said
    else:
        # logging the model links the run's latest metrics to it (new points on the run too)
        assert "1 logged model(s)" in said, said
    srv = Server(str(workdir), "--backend-store-uri", "sqlite:///plumb.db")
    try:
        target = MlflowClient(tracking_uri=srv.url)
        want = {e.experiment_id: e for e in source.search_experiments(view_type=ViewType.ALL)}
        got = {e.experiment_id: e for e in target.search_experiments(view_type=ViewType.ALL)}
        assert set(want) == set(got)
        for eid, e in want.items():
            assert (got[eid].name, got[eid].lifecycle_stage) == (e.name, e.lifecycle_stage)
        assert got[exp].tags == {"team": "x"}
        want, got = runs_of(source, exp), runs_of(target, exp)
        assert set(want) == set(got) == {rid, gone_run}
        for r, w in want.items():
            g = got[r]
            for field in ("run_name", "status", "start_time", "end_time", "user_id", "lifecycle_stage"):
                assert getattr(g.info, field) == getattr(w.info, field), (r, field)
            assert (g.data.params, g.data.tags, g.data.metrics.keys()) == (w.data.params, w.data.tags, w.data.metrics.keys())
        assert got[rid].data.metrics["loss"] == want[rid].data.metrics["loss"]
        # The file store keeps a point logged twice twice (log_model re-logs some); plumb keeps
        # one, as MLflow's database does (the point is its key).
        hw = sorted({(m.step, m.timestamp, m.value) for m in source.get_metric_history(rid, "loss")})
        hg = sorted((m.step, m.timestamp, m.value) for m in target.get_metric_history(rid, "loss"))
        assert hw == hg and len(hg) == 2000
        (tmp_path / "down").mkdir()
        (tmp_path / "bymodel").mkdir()
        down = target.download_artifacts(rid, "model/weights.bin", str(tmp_path / "down"))
        assert filecmp.cmp(down, blob, shallow=False)
        rm = target.get_registered_model("m")
        assert (rm.description, rm.tags, rm.aliases) == ("multi\nline", {"o": "a"}, {"champion": "1"})
        v = target.get_model_version("m", "1")
        assert v.tags == {"vt": "1"} and v.run_id == rid
        assert v.source == got[rid].info.artifact_uri + "/model"
        mlflow.set_tracking_uri(srv.url)
        loaded = mlflow.artifacts.download_artifacts("models:/m/1", dst_path=str(tmp_path / "bymodel"))
        assert filecmp.cmp(os.path.join(loaded, "weights.bin"), blob, shallow=False)
        if model_id is not None:
            w, g = source.get_logged_model(model_id), target.get_logged_model(model_id)
            for field in ("name", "status", "source_run_id", "creation_timestamp", "tags", "params"):
                assert getattr(g, field) == getattr(w, field), field
            assert sorted((m.key, str(m.value), m.step, m.run_id, m.dataset_name or "") for m in g.metrics) == sorted(
                (m.key, str(m.value), m.step, m.run_id, m.dataset_name or "") for m in w.metrics)
            assert [round(float(p), 6) for p in mlflow.sklearn.load_model(f"models:/{model_id}").predict([[2.0]])] == [5.0]
            (d,) = got[rid].inputs.dataset_inputs
            assert (d.dataset.name, {t.key: t.value for t in d.tags}) == ("train", {"mlflow.data.context": "training"})
            assert got[rid].outputs.model_outputs[0].model_id == model_id
    finally:
        srv.stop()
    assert not srv.server_errors()
