"""confluent-kafka clients built from settings, and topic creation."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.config import Settings
from streams.topics import TOPICS, topic_configs, topic_name

log = logging.getLogger(__name__)


def base_config(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, **settings.kafka}


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        **base_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": 2_000_000,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    """Consumer defaults; ``settings.kafka`` and ``extra`` override them."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        # 10 s (Kafka's old default) instead of 45 s: a dead worker's partitions move sooner,
        # and tansu holds a group join for about half the session timeout (23 s at 45 s).
        "session.timeout.ms": 10_000,
        **settings.kafka,
        **extra,
    }


def make_producer(settings: Settings, **extra: Any) -> Producer:
    return Producer(producer_config(settings, **extra))


def make_consumer(settings: Settings, group_id: str | None = None, **extra: Any) -> Consumer:
    group = group_id or f"caslie-cli-{uuid.uuid4().hex[:12]}"
    return Consumer(consumer_config(settings, group, **extra))


def make_admin(settings: Settings) -> AdminClient:
    return AdminClient(base_config(settings))


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create every caslie topic; existing topics are left as they are.

    Returns topic name -> ``created`` or ``exists``.
    """
    admin = make_admin(settings)
    new = [
        NewTopic(
            topic_name(settings, spec.logical),
            num_partitions=spec.partitions or settings.partitions,
            replication_factor=settings.replication_factor,
            config=topic_configs(spec),
        )
        for spec in TOPICS
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            outcome[name] = "created"
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
    return outcome


def wait_for_broker(settings: Settings, timeout: float = 30.0) -> None:
    """Block until the cluster answers a metadata request, or raise ``TimeoutError``."""
    import time

    # librdkafka's own log level 0: the probe's connection failures are this function's
    # TimeoutError, not a line per attempt on stderr
    admin = AdminClient({**base_config(settings), "log_level": 0})
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            last = exc
            time.sleep(0.3)
    raise TimeoutError(f"broker {settings.bootstrap_servers} did not answer in {timeout}s: {last}")
