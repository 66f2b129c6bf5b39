"""Liveness/readiness/metrics endpoints over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from streams import health as health_module
from streams import metrics
from streams.health import Health, serve


class _Broker:
    def __init__(self) -> None:
        self.down: str | None = None
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.down:
            raise TimeoutError(self.down)


@pytest.fixture
def broker() -> _Broker:
    return _Broker()


@pytest.fixture
def endpoint(broker: _Broker, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Health, str]]:
    monkeypatch.setattr(health_module, "BROKER_CHECK_INTERVAL_S", 0.0)
    health = Health(broker.check)
    server = serve(health, 0, host="127.0.0.1")
    yield health, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_not_ready_while_models_load(endpoint: tuple[Health, str]) -> None:
    health, url = endpoint
    assert _get(url + "/healthz") == (200, "alive\n")
    assert _get(url + "/readyz") == (503, "loading models\n")
    health.models_loaded()
    assert _get(url + "/readyz") == (200, "ready\n")


def test_not_ready_while_the_broker_is_unreachable(
    endpoint: tuple[Health, str], broker: _Broker
) -> None:
    health, url = endpoint
    health.models_loaded()
    broker.down = "broker 10.0.0.1:9092 did not answer in 2s"
    assert _get(url + "/readyz") == (
        503,
        "broker unreachable: broker 10.0.0.1:9092 did not answer in 2s\n",
    )
    assert _get(url + "/healthz")[0] == 200  # a broker outage is no reason to restart
    broker.down = None
    assert _get(url + "/readyz") == (200, "ready\n")


def test_a_failed_stage_is_not_alive(endpoint: tuple[Health, str]) -> None:
    health, url = endpoint
    health.models_loaded()
    health.failed("predictor: RuntimeError: CUDA out of memory")
    assert _get(url + "/healthz") == (
        503,
        "stage failed: predictor: RuntimeError: CUDA out of memory\n",
    )
    assert _get(url + "/readyz")[0] == 503


def test_metrics_and_unknown_paths(endpoint: tuple[Health, str]) -> None:
    _, url = endpoint
    metrics.RECORDS_IN.labels("health-test", "t.requests").inc()
    status, body = _get(url + "/metrics")
    assert status == 200
    assert 'caslie_records_in_total{stage="health-test",topic="t.requests"} 1.0' in body
    assert _get(url + "/nope")[0] == 404


def test_broker_checks_are_rate_limited(broker: _Broker) -> None:
    health = Health(broker.check)
    health.models_loaded()
    for _ in range(5):
        assert health.readiness() == (True, "ready")
    assert broker.checks == 1
