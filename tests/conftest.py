"""Shared fixtures: a session-scoped Apache Kafka broker (or ``CASLIE_TEST_BOOTSTRAP_SERVERS``),
per-test topic prefixes, and the embedded tansu broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from streams.apache_kafka import ApacheKafka
from streams.clients import create_topics, wait_for_broker
from streams.config import Settings


@pytest.fixture(scope="session")
def apache_kafka() -> Iterator[ApacheKafka | None]:
    """The broker process this session started; ``None`` with an external broker."""
    if os.environ.get("CASLIE_TEST_BOOTSTRAP_SERVERS"):
        yield None
        return
    broker = ApacheKafka().start()
    try:
        wait_for_broker(Settings(bootstrap_servers=broker.bootstrap_servers), timeout=60)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(apache_kafka: ApacheKafka | None) -> str:
    if apache_kafka is None:
        return os.environ["CASLIE_TEST_BOOTSTRAP_SERVERS"]
    return apache_kafka.bootstrap_servers


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Settings:
    """Settings on the test broker with a fresh topic prefix; topics already created."""
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=2,
    )
    create_topics(settings)
    return settings


@pytest.fixture
def kafka_env(kafka_settings: Settings) -> dict[str, str]:
    """Environment for ``caslie`` subprocesses talking to the test broker."""
    return {
        **os.environ,
        "CASLIE_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "CASLIE_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "CASLIE_PARTITIONS": str(kafka_settings.partitions),
    }


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """moto's standalone S3 server on a loopback port; yields its endpoint URL."""
    import socket
    import subprocess
    import sys
    import time

    from streams.broker import free_port

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
