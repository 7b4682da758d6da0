"""A tiny client for plumb's monitoring API, for services that serve a model.

``Monitor(name, tracking_uri).log(...)`` queues an inference event and returns at once; a
background thread sends the queue in batches to ``POST /api/2.0/plumb/monitors/{name}/events``.
Nothing here blocks or raises into the request path: when the queue is full (the server is down
for long), events are dropped and counted in ``Monitor.dropped``; failed sends are retried with a
growing pause. ``flush()`` waits for what is queued; the queue is flushed at interpreter exit.

Standard library only. Ground truth that arrives later goes through ``Monitor.label``. Request
ids you pass yourself are cheapest for the server when they sort by time (UUIDv7, ULID).
"""
import atexit
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

__all__ = ["Monitor"]
__version__ = "0.1.0"

_log = logging.getLogger("plumb_monitor")


def _time_ordered_id():
    """A UUIDv7-like id (48-bit millisecond time, then random bits): ids that sort by time are
    the cheapest for the server to index."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


class Monitor:
    """Sends a monitor's inference events and labels to a plumb server in the background."""

    def __init__(self, name, tracking_uri=None, *, batch_size=1000, flush_interval=1.0,
                 max_queue=100_000, timeout=10.0):
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000"
        self.name = name
        base = uri.rstrip("/") + "/api/2.0/plumb/monitors/" + urllib.parse.quote(name, safe="")
        self._events_url = base + "/events"
        self._labels_url = base + "/labels"
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._timeout = timeout
        self._queue = queue.Queue(maxsize=max_queue)
        self._pending = 0
        self._idle = threading.Condition()
        self._closed = False
        #: Events dropped because the queue was full or the server refused them (400).
        self.dropped = 0
        #: Events the server acknowledged.
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name=f"plumb-monitor-{name}",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def log(self, *, latency_ms=None, error=False, prediction=None, label=None, scores=None,
            features=None, segment=None, request_id=None, timestamp_ms=None):
        """Queues one event; returns its request id (for a later ``label``). Never raises."""
        try:
            rid = request_id or _time_ordered_id()
            event = {"request_id": str(rid),
                     "timestamp_ms": int(timestamp_ms if timestamp_ms is not None
                                         else time.time() * 1000)}
            for key, value in (("latency_ms", latency_ms), ("prediction", prediction),
                               ("label", label), ("scores", scores), ("features", features),
                               ("segment", segment)):
                if value is not None:
                    event[key] = value
            if error:
                event["error"] = True
            self._put(("events", event))
            return rid
        except Exception:  # never into the request path
            _log.debug("plumb_monitor: event not queued", exc_info=True)
            self.dropped += 1
            return None

    def label(self, request_id, label):
        """Queues late ground truth for an event logged earlier. Never raises."""
        try:
            self._put(("labels", {"request_id": str(request_id), "label": label}))
        except Exception:
            self.dropped += 1

    def _put(self, item):
        if self._closed:
            self.dropped += 1
            return
        with self._idle:
            try:
                self._queue.put_nowait(item)
                self._pending += 1
            except queue.Full:
                self.dropped += 1

    def flush(self, timeout=30.0):
        """Waits until everything queued so far was sent (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self, timeout=10.0):
        """Flushes and stops the background thread (also run at interpreter exit)."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True

    def _take(self):
        """Waits for a first item, then takes what else is queued up to a batch."""
        items = []
        try:
            items.append(self._queue.get(timeout=self._flush_interval))
        except queue.Empty:
            return items
        while len(items) < self._batch_size:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _run(self):
        while not (self._closed and self._queue.empty()):
            items = self._take()
            if not items:
                continue
            for kind in ("events", "labels"):
                batch = [body for k, body in items if k == kind]
                if batch:
                    self._send(kind, batch)
            with self._idle:
                self._pending -= len(items)
                self._idle.notify_all()

    def _send(self, kind, batch):
        url = self._events_url if kind == "events" else self._labels_url
        data = json.dumps({kind: batch}).encode()
        pause = 0.2
        for _attempt in range(8):
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as resp:
                    resp.read()
                if kind == "events":
                    self.sent += len(batch)
                return
            except urllib.error.HTTPError as e:
                if 400 <= e.code < 500:
                    # Refused for good (a bad event, an unknown monitor): do not retry.
                    _log.warning("plumb_monitor: %s refused %s: %s", url, kind, e.read()[:500])
                    self.dropped += len(batch)
                    return
            except Exception:
                pass
            if self._closed:
                break
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
        _log.warning("plumb_monitor: dropped %d %s after retries", len(batch), kind)
        self.dropped += len(batch)
