"""Validate JSON lines for a topic and produce them (the ``caslie produce`` command).

The key rule (docs/events.md, "Keys"): a record's Kafka key is the value of its topic's key
field (:attr:`streams.topics.TopicSpec.key`: ``product_id`` on ``catalog``, ``request_id`` on
``queries`` ...), as UTF-8 text. The producers here derive it from the value; a key given with
the value (``KEY<delimiter>VALUE`` lines, kcat's ``-K`` form) must equal it, or the line is
refused with the reason. The one record without a value is a ``catalog`` tombstone (the delete
of a product): a key and an empty value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer
from pydantic import BaseModel

from schemas.registry import validate
from streams.clients import make_producer, wait_for_broker
from streams.codec import TOMBSTONE_TOPICS, decode, encode_value
from streams.config import Settings
from streams.exceptions import DecodeFailure, StreamError
from streams.topics import BY_LOGICAL, logical_name, topic_name


class ProduceError(StreamError):
    """Records could not be delivered."""


@dataclass
class ProduceReport:
    sent: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


class KeyMismatch(ValueError):
    """A key given with a record is not the value of the topic's key field."""


def record_key(logical: str, record: BaseModel) -> str | None:
    """The record's partitioning key, by the topic registry's key field."""
    value = getattr(record, BY_LOGICAL[logical].key, None)
    return None if value is None else str(value)


def check_key(logical: str, record: BaseModel, key: str) -> str:
    """``key`` if it is the record's key (:func:`record_key`); :class:`KeyMismatch` with a
    one-line reason if not."""
    expected = record_key(logical, record)
    if key != expected:
        field_name = BY_LOGICAL[logical].key
        raise KeyMismatch(
            f"key {key!r} is not the value's {field_name} {expected!r} "
            f"(the {logical} topic is keyed by {field_name})"
        )
    return key


def produce_event(
    producer: Producer,
    settings: Settings,
    logical: str,
    event: dict[str, Any],
    key: str | None = None,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
) -> None:
    """Validate ``event`` as a record of ``logical`` (raises ``pydantic.ValidationError`` on a
    bad one, :class:`KeyMismatch` when ``key`` is given and is not its key) and produce it,
    keyed by the topic's key field. The caller flushes."""
    record = validate(logical, event)
    derived = record_key(logical, record) if key is None else check_key(logical, record, key)
    producer.produce(
        topic_name(settings, logical),
        key=derived.encode() if derived else None,
        value=orjson.dumps(event),
        on_delivery=on_delivery,
    )


def parse_line(
    raw: bytes, logical: str, key_delimiter: bytes | None = None
) -> tuple[str | None, bytes | None]:
    """One input line -> (key, value to send), validated; raises :class:`DecodeFailure` or
    :class:`KeyMismatch` with the reason.

    Without ``key_delimiter`` the line is the JSON value and the key is derived. With it the
    line is ``KEY<delimiter>VALUE`` (split at the first delimiter) and the key is checked; an
    empty value on a topic where a missing value deletes its key (``catalog``) is a tombstone.
    """
    if key_delimiter is None:
        return record_key(logical, decode(raw, logical)), raw
    key_bytes, sep, value = raw.partition(key_delimiter)
    if not sep:
        raise KeyMismatch(f"no key: the line has no {key_delimiter.decode()!r} delimiter")
    key = key_bytes.decode("utf-8", errors="replace")
    if not value.strip() and logical in TOMBSTONE_TOPICS:
        if not key:
            raise KeyMismatch("a tombstone (empty value) needs a key")
        return key, encode_value(decode(None, logical))
    return check_key(logical, decode(value, logical), key), value


def produce_lines(
    settings: Settings,
    topic: str,
    lines: Iterable[bytes],
    skip_invalid: bool = False,
    timeout: float = 60.0,
    key_delimiter: bytes | None = None,
) -> ProduceReport:
    """Validate every line first (:func:`parse_line`); send the original bytes of the valid
    ones, keyed by their key field.

    With invalid lines and ``skip_invalid`` false nothing is sent.
    """
    logical = logical_name(settings, topic)
    report = ProduceReport()
    valid: list[tuple[str | None, bytes | None]] = []
    for line_no, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            valid.append(parse_line(raw, logical, key_delimiter))
        except DecodeFailure as exc:
            report.invalid.append((line_no, f"{exc.kind}: {exc.message}"))
        except KeyMismatch as exc:
            report.invalid.append((line_no, f"key: {exc}"))
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
    for key, value in valid:
        while True:
            try:
                producer.produce(
                    name, key=key.encode() if key else None, value=value, on_delivery=delivered
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
