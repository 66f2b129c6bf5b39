"""The adapter watcher on real Apache Kafka and a real registry in a temporary folder; the
model the adapters are loaded into is a recorder (loading real weights is
tests/training/test_live_reload.py's part)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas import EnrichedRecord
from schemas.tasks.sa import SA_OPTIONS
from streams.artifacts.registry import AdapterRegistry, AdapterVersion
from streams.artifacts.storage import LocalStorage, Storage
from streams.clients import make_consumer
from streams.config import Settings
from streams.stage import Emit, FatalStageError, Inbound
from training.retrain import announce
from workers.adapters import AdapterWatcher
from workers.backends.base import Choice
from workers.predictor import PredictorStage

pytestmark = pytest.mark.kafka


class _Model:
    """Records what the watcher loads and unloads."""

    def __init__(self, unload_error: str | None = None) -> None:
        self.loaded: list[str] = []
        self.adapters: set[str] = set()
        self.unload_error = unload_error

    def load_adapter(self, ref: str, path: Path) -> None:
        assert (path / "adapter_config.json").is_file()
        self.loaded.append(ref)
        self.adapters.add(ref)

    def unload_adapter(self, ref: str) -> None:
        if self.unload_error is not None:
            raise RuntimeError(self.unload_error)
        self.adapters.discard(ref)


class _Scorer:
    """Answers ``A``; ``hold`` makes a batch wait inside the model until released."""

    name = "scorer"

    def __init__(self) -> None:
        self.hold = False
        self.inside = threading.Event()
        self.release = threading.Event()

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]:
        if self.hold:
            self.inside.set()
            assert self.release.wait(60)
        return [Choice("A") for _ in prompts]


class _Storage:
    """A registry's storage whose file reads can be held or made to fail."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.open = threading.Event()
        self.open.set()
        self.failures = 0
        self.on_failure: Callable[[], None] = lambda: None

    def put(self, key: str, data: bytes) -> None:
        self.storage.put(key, data)

    def get(self, key: str) -> bytes:
        if "/files/" in key:
            assert self.open.wait(60)
            if self.failures:
                self.failures -= 1
                self.on_failure()
                raise OSError("connection reset by peer")
        return self.storage.get(key)

    def exists(self, key: str) -> bool:
        return self.storage.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.storage.list(prefix)


@pytest.fixture
def storage(tmp_path: Path) -> _Storage:
    return _Storage(LocalStorage(tmp_path / "registry"))


@pytest.fixture
def registry(storage: _Storage) -> AdapterRegistry:
    return AdapterRegistry(storage)


@pytest.fixture
def watchers() -> Iterator[list[AdapterWatcher]]:
    started: list[AdapterWatcher] = []
    yield started
    for watcher in started:
        watcher.stop.set()
        watcher._thread.join(30)


def _publish(registry: AdapterRegistry, tmp_path: Path, name: str) -> AdapterVersion:
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "name": name}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights" * 10)
    return registry.publish(name, folder, "smollm2")


def _watch(
    settings: Settings,
    model: _Model,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
    start_attempts: int = 5,
) -> AdapterWatcher:
    watcher = AdapterWatcher(
        settings,
        model,
        registry,
        tmp_path / "cache",
        retry_delay=0.01,  # doubling up to 50 ms: the tests wait for retries, not time them
        max_delay=0.05,
        start_attempts=start_attempts,
    )
    watchers.append(watcher.start())
    return watcher


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _count(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _request(rid: str, adapter: str) -> Inbound:
    record = EnrichedRecord(
        request_id=rid,
        task="SA",
        inputs={"review": "fine"},
        options=list(SA_OPTIONS),
        adapter=adapter,
        timestamps={"router": time.time()},
    )
    return Inbound("enriched", 0, 0, None, record, b"")


def test_start_loads_only_the_latest_version_of_each_name(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    for _ in range(3):
        announce(kafka_settings, _publish(registry, tmp_path, "g"))
    announce(kafka_settings, _publish(registry, tmp_path, "h"))
    model = _Model()
    watcher = _watch(kafka_settings, model, registry, tmp_path, watchers)
    assert watcher.ready(60)
    assert model.loaded == ["g@v3", "h@v1"]
    assert (watcher.resolve("g"), watcher.resolve("h")) == ("g@v3", "h@v1")


def test_not_ready_until_the_announced_version_is_loaded(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    storage: _Storage,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    announce(kafka_settings, _publish(registry, tmp_path, "g"))
    storage.open.clear()  # the download cannot finish
    watcher = _watch(kafka_settings, _Model(), registry, tmp_path, watchers)
    stage = PredictorStage(_Scorer(), default_adapter="g", adapters=watcher)
    assert not stage.ready(1)
    assert watcher.resolve("g") is None
    storage.open.set()
    assert stage.ready(60)
    assert watcher.resolve("g") == "g@v1"
    [result] = stage.process([_request("r1", "g")])
    assert isinstance(result, Emit) and result.outputs[0].value.adapter == "g@v1"  # type: ignore[attr-defined]


def test_a_version_that_never_loads_at_start_fails_the_stage(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    announce(kafka_settings, _publish(registry, tmp_path, "broken"))
    registry.storage.put("broken/v1/files/adapter_model.safetensors", b"tampered")
    before = _count("caslie_adapter_load_failures_total", {"adapter": "broken"})
    watcher = _watch(kafka_settings, _Model(), registry, tmp_path, watchers, start_attempts=3)
    stage = PredictorStage(_Scorer(), adapters=watcher)
    with pytest.raises(FatalStageError, match=r"broken@v1 could not be loaded \(3 attempts\)"):
        stage.ready(60)
    with pytest.raises(FatalStageError, match="does not match its manifest"):
        stage.process([_request("r1", "broken")])
    assert _count("caslie_adapter_load_failures_total", {"adapter": "broken"}) == before + 3


def test_a_failed_download_is_retried_while_the_old_version_serves(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    storage: _Storage,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    announce(kafka_settings, _publish(registry, tmp_path, "r"))
    model = _Model()
    watcher = _watch(kafka_settings, model, registry, tmp_path, watchers)
    assert watcher.ready(60)
    serving: list[str | None] = []
    storage.on_failure = lambda: serving.append(watcher.resolve("r"))
    storage.failures = 3
    before = _count("caslie_adapter_load_failures_total", {"adapter": "r"})
    announce(kafka_settings, _publish(registry, tmp_path, "r"))
    _wait_for(lambda: watcher.resolve("r") == "r@v2")
    assert watcher.resolve("r") == "r@v2"
    assert serving == ["r@v1"] * 3
    assert _count("caslie_adapter_load_failures_total", {"adapter": "r"}) == before + 3
    assert model.loaded == ["r@v1", "r@v2"]
    assert model.adapters == {"r@v2"}  # the old version is unloaded after the switch


def test_a_batch_finishes_on_the_version_it_started_with(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    announce(kafka_settings, _publish(registry, tmp_path, "p"))
    model = _Model()
    watcher = _watch(kafka_settings, model, registry, tmp_path, watchers)
    scorer = _Scorer()
    stage = PredictorStage(scorer, default_adapter="p", adapters=watcher)
    assert stage.ready(60)
    scorer.hold = True
    results: list[object] = []
    batch = threading.Thread(target=lambda: results.extend(stage.process([_request("r", "p")])))
    batch.start()
    assert scorer.inside.wait(60)
    announce(kafka_settings, _publish(registry, tmp_path, "p"))
    _wait_for(lambda: "p@v2" in model.loaded)
    assert "p@v2" in model.loaded
    assert watcher.resolve("p") == "p@v1" and "p@v1" in model.adapters  # the batch holds it
    scorer.release.set()
    batch.join(60)
    [result] = results
    assert isinstance(result, Emit) and result.outputs[0].value.adapter == "p@v1"  # type: ignore[attr-defined]
    _wait_for(lambda: model.adapters == {"p@v2"})
    assert watcher.resolve("p") == "p@v2" and model.adapters == {"p@v2"}


def test_a_missing_topic_fails_the_stage_with_its_reason(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    settings = kafka_settings.model_copy(update={"topic_prefix": f"m{uuid.uuid4().hex[:8]}."})
    before = _count("caslie_adapter_watcher_errors_total", {"kind": "fatal"})
    watcher = _watch(settings, _Model(), registry, tmp_path, watchers)
    with pytest.raises(FatalStageError, match=r"adapters does not exist \(run 'caslie topics"):
        watcher.ready(60)
    assert _count("caslie_adapter_watcher_errors_total", {"kind": "fatal"}) == before + 1


def test_an_error_in_the_watcher_thread_stops_the_stage(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
) -> None:
    announce(kafka_settings, _publish(registry, tmp_path, "e"))
    watcher = _watch(kafka_settings, _Model("engine gone"), registry, tmp_path, watchers)
    stage = PredictorStage(_Scorer(), default_adapter="e", adapters=watcher)
    assert stage.ready(60)
    announce(kafka_settings, _publish(registry, tmp_path, "e"))  # unloading v1 fails
    _wait_for(lambda: watcher._error is not None)
    with pytest.raises(FatalStageError, match="RuntimeError: engine gone"):
        stage.process([_request("r", "e")])


class _Unreachable:
    """A consumer whose broker does not answer (its metadata request times out)."""

    def list_topics(self, *args: object, **kwargs: object) -> None:
        from confluent_kafka import KafkaError, KafkaException

        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker unreachable"))

    def close(self) -> None:
        pass


def test_a_transient_consumer_error_is_retried(
    kafka_settings: Settings,
    registry: AdapterRegistry,
    tmp_path: Path,
    watchers: list[AdapterWatcher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumers: list[object] = [_Unreachable(), _Unreachable()]
    monkeypatch.setattr(
        "workers.adapters.make_consumer",
        lambda *args, **kwargs: consumers.pop(0) if consumers else make_consumer(*args, **kwargs),
    )
    announce(kafka_settings, _publish(registry, tmp_path, "t"))
    before = _count("caslie_adapter_watcher_errors_total", {"kind": "transient"})
    watcher = _watch(kafka_settings, _Model(), registry, tmp_path, watchers)
    assert watcher.ready(60)
    assert watcher.resolve("t") == "t@v1"
    assert _count("caslie_adapter_watcher_errors_total", {"kind": "transient"}) == before + 2
