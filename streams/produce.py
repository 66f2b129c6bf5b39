"""Validate JSON lines for a topic and produce them (the ``caslie produce`` command)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer
from pydantic import BaseModel

from schemas.registry import validate
from streams.clients import make_producer, wait_for_broker
from streams.codec import decode
from streams.config import Settings
from streams.exceptions import DecodeFailure, StreamError
from streams.topics import BY_LOGICAL, logical_name, topic_name


class ProduceError(StreamError):
    """Records could not be delivered."""


@dataclass
class ProduceReport:
    sent: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def record_key(logical: str, record: BaseModel) -> str | None:
    """The record's partitioning key, by the topic registry's key field."""
    value = getattr(record, BY_LOGICAL[logical].key, None)
    return None if value is None else str(value)


def produce_event(
    producer: Producer, settings: Settings, logical: str, event: dict[str, Any]
) -> None:
    """Validate ``event`` as a record of ``logical`` (raises on a bad one) and produce it,
    keyed by the topic's key field. The caller flushes."""
    key = record_key(logical, validate(logical, event))
    producer.produce(
        topic_name(settings, logical),
        key=key.encode() if key else None,
        value=orjson.dumps(event),
    )


def produce_lines(
    settings: Settings,
    topic: str,
    lines: Iterable[bytes],
    skip_invalid: bool = False,
    timeout: float = 60.0,
) -> ProduceReport:
    """Validate every line first; send the original bytes of the valid ones.

    With invalid lines and ``skip_invalid`` false nothing is sent.
    """
    logical = logical_name(settings, topic)
    report = ProduceReport()
    valid: list[tuple[str | None, bytes]] = []
    for line_no, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            record = decode(raw, logical)
        except DecodeFailure as exc:
            report.invalid.append((line_no, f"{exc.kind}: {exc.message}"))
            continue
        valid.append((record_key(logical, record), raw))
    if report.invalid and not skip_invalid:
        return report

    try:
        wait_for_broker(settings, timeout=min(timeout, 10.0))
    except TimeoutError as exc:
        raise ProduceError(f"nothing sent: {exc}") from None
    errors: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            report.sent += 1
        else:
            errors.append(str(err))

    producer = make_producer(settings, **{"message.timeout.ms": int(timeout * 1000)})
    name = topic_name(settings, logical)
    for key, raw in valid:
        while True:
            try:
                producer.produce(
                    name, key=key.encode() if key else None, value=raw, on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(timeout + 5)
    if errors or left:
        raise ProduceError(
            f"{len(errors) + left} of {len(valid)} records not delivered: "
            f"{errors[:1] or 'timed out'}"
        )
    return report
