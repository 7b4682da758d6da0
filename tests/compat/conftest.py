"""Fixtures: a real `plumb server` process on a free port, with its own database and artifacts.

The backend is SQLite unless PLUMB_TEST_BACKEND=postgres: then every server gets a fresh
PostgreSQL database on PLUMB_TEST_POSTGRES_URL's server (default: the machine's own), dropped
when the server stops.
"""
import contextlib
import os
import uuid
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

# A 5xx must fail a test at once, not be retried for minutes.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BACKEND = os.environ.get("PLUMB_TEST_BACKEND", "sqlite")
ADMIN_URL = os.environ.get("PLUMB_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _psql(sql):
    subprocess.run(["psql", ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


@contextlib.contextmanager
def fresh_database(prefix="plumb_compat"):
    """A new, empty PostgreSQL database on the test server: its URL, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    def __init__(self, workdir, *extra_args, env=None):
        self.workdir = workdir
        self.database = None
        if BACKEND == "postgres" and "--backend-store-uri" not in extra_args:
            self.database = f"plumb_compat_{uuid.uuid4().hex}"
            _psql(f'CREATE DATABASE "{self.database}"')
            base = ADMIN_URL.rsplit("/", 1)[0]
            extra_args = ("--backend-store-uri", f"{base}/{self.database}", *extra_args)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, "server.log")
        binary = os.path.abspath(os.environ.get("PLUMB_BIN") or os.path.join(HERE, "..", "..", "target", "debug", "plumb"))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "server", "--port", str(self.port), *extra_args],
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PLUMB_LOG": "info,plumb_server=debug,tower_http=info", **(env or {})},
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("plumb did not become ready:\n" + open(self.log_path).read())
            time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if self.database:
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def server_errors(self):
        """Lines where plumb answered 5xx (ERROR logs of failed requests)."""
        with open(self.log_path) as f:
            return [line for line in f if "request failed" in line]


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="plumb-compat-") as workdir:
        srv = Server(workdir)
        old = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = srv.url
        import mlflow

        mlflow.set_tracking_uri(srv.url)
        try:
            yield srv
        finally:
            srv.stop()
            if old is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = old
            errors = srv.server_errors()
            assert not errors, "plumb answered 5xx:\n" + "".join(errors)
            assert srv.proc.returncode == 0, f"plumb exited with {srv.proc.returncode} on SIGTERM"


@pytest.fixture
def client(server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.url)


def mlflow_major():
    import mlflow

    return int(mlflow.__version__.split(".")[0])


def python():
    return sys.executable
