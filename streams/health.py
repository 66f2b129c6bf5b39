"""Liveness, readiness and Prometheus metrics on one HTTP port.

- ``/healthz`` (liveness): 200 while the worker runs; 503 once a stage failed, so the
  supervisor restarts the process if it has not exited yet.
- ``/readyz`` (readiness): 200 only when every stage's models are loaded and the broker
  answered a metadata request within the last check; 503 with the reason otherwise.
- ``/metrics``: the Prometheus text format.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

BROKER_CHECK_INTERVAL_S = 5.0


class Health:
    """What the endpoints report; stages and the supervisor loop update it."""

    def __init__(self, broker_check: Callable[[], None]) -> None:
        #: Raises when the broker cannot be reached; called at most every few seconds.
        self._broker_check = broker_check
        self._lock = threading.Lock()
        self._loaded = False
        self._failure: str | None = None
        self._broker_error: str | None = "not checked yet"
        self._checked_at = float("-inf")

    def models_loaded(self) -> None:
        with self._lock:
            self._loaded = True

    def failed(self, reason: str) -> None:
        with self._lock:
            self._failure = reason

    def liveness(self) -> tuple[bool, str]:
        with self._lock:
            if self._failure is not None:
                return False, f"stage failed: {self._failure}"
            return True, "alive"

    def readiness(self) -> tuple[bool, str]:
        alive, reason = self.liveness()
        if not alive:
            return False, reason
        with self._lock:
            if not self._loaded:
                return False, "loading models"
        broker_error = self._checked_broker()
        if broker_error is not None:
            return False, f"broker unreachable: {broker_error}"
        return True, "ready"

    def _checked_broker(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._checked_at < BROKER_CHECK_INTERVAL_S:
                return self._broker_error
        try:
            self._broker_check()
            error = None
        except Exception as exc:  # any failure means "not ready", with its text
            error = str(exc) or type(exc).__name__
        with self._lock:
            self._broker_error = error
            self._checked_at = time.monotonic()
        return error


def serve(health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve the endpoints from a daemon thread; ``port`` 0 picks a free one
    (``server.server_address[1]``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, reason = health.liveness() if path == "/healthz" else health.readiness()
                self._reply(200 if ok else 503, reason.encode() + b"\n", "text/plain")
            else:
                self._reply(404, b"not found: /metrics, /healthz, /readyz\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the logs

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
