"""The local broker (``streams.local_broker``): Apache Kafka when Java and its jars are there,
tansu otherwise, and the one line that says which started and what it cannot do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.apache_kafka import KAFKA_VERSION, POM, ApacheKafka, missing_reason
from streams.exceptions import BrokerUnavailable
from streams.local_broker import describe, start_local_broker


def test_the_launcher_runs_the_kafka_version_the_pom_fetches() -> None:
    pom = re.search(r"<kafka.version>(.+)</kafka.version>", POM.read_text())
    assert pom is not None and pom.group(1) == KAFKA_VERSION


@pytest.fixture
def no_jars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CASLIE_KAFKA_LIBS", str(tmp_path))
    return tmp_path


def test_apache_kafka_without_jars_says_how_to_get_them(no_jars: Path) -> None:
    reason = missing_reason()
    assert reason is not None and ("fetch-jars" in reason or "java" in reason)
    with pytest.raises(BrokerUnavailable, match="Apache Kafka cannot start"):
        start_local_broker("apache")


@pytest.mark.embedded
def test_auto_falls_back_to_tansu_and_says_what_tansu_cannot_do(no_jars: Path) -> None:
    broker, fallback = start_local_broker("auto")
    try:
        assert broker.running() and fallback == missing_reason()
        line = describe(broker, fallback)
        assert line.startswith(f"tansu broker on {broker.bootstrap_servers}")
        assert "Apache Kafka unavailable" in line
        assert "kcat" in line and "exactly-once" in line
    finally:
        broker.stop()


def test_apache_kafkas_line_names_it_without_limits() -> None:
    kafka = ApacheKafka(port=19092)
    try:
        assert describe(kafka) == "Apache Kafka broker on 127.0.0.1:19092"
    finally:
        kafka.stop()
