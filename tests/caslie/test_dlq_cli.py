"""``caslie dlq replay`` on Apache Kafka: chosen envelopes go back to their source topic with
their original key; a truncated payload is refused; a dry run produces nothing."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from typer.testing import CliRunner

from caslie.cli import app
from schemas.dlq import ErrorKind
from streams.clients import make_consumer, make_producer
from streams.codec import encode
from streams.config import DlqSettings, Settings
from streams.consume import consume_records
from streams.dlq import Failure, make_envelope
from streams.replay import REPLAY_HEADER
from streams.topics import topic_name
from tests.support.runner import request_bytes


def _dead_letter(settings: Settings, rid: str, offset: int, cut: bool = False) -> bytes:
    """Put the envelope of a rejected request on the DLQ; the request's bytes."""
    value = request_bytes(rid)
    failure = Failure(
        topic_name(settings, "requests"),
        0,
        offset,
        f"key-{rid}".encode(),
        value,
        ErrorKind.PROCESSING,
        "engine hiccup",
    )
    limits = DlqSettings(payload_max_bytes=10 if cut else 900_000)
    envelope = make_envelope("captioner", failure, limits, rid)
    producer = make_producer(settings)
    dlq = topic_name(settings, "dlq")  # one partition: the envelopes stay in order
    producer.produce(dlq, key=f"key-{rid}".encode(), value=encode(envelope), partition=0)
    assert producer.flush(30) == 0
    return value


Record = tuple[bytes | None, bytes | None, dict[str, str | bytes | None]]


def _requests(settings: Settings) -> list[Record]:
    """(key, value, headers) of everything on ``requests`` now."""
    name = topic_name(settings, "requests")
    consumer = make_consumer(settings)
    parts = [TopicPartition(name, p) for p in range(settings.partitions)]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    consumer.assign([TopicPartition(name, p, 0) for p, end in ends.items() if end])
    found: list[Record] = []
    while len(found) < sum(ends.values()):
        msg = consumer.poll(10)
        assert msg is not None, "records missing"
        if msg.error() is None:
            found.append((msg.key(), msg.value(), dict(msg.headers() or [])))
    consumer.close()
    return found


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kind", "bogus"], "unknown error kind(s) bogus; known: undecodable"),
        (["--since", "yesterday"], "'yesterday' is neither seconds since the epoch nor"),
        (["--max", "0"], "greater than or equal to 1"),
    ],
)
def test_replay_refuses_bad_options_before_reading(args: list[str], says: str) -> None:
    env = {"CASLIE_BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # nothing listens: never reached
    result = CliRunner().invoke(app, ["dlq", "replay", *args], env=env)
    assert result.exit_code == 2
    assert says in " ".join(result.stderr.replace("│", " ").split())  # out of rich's box


@pytest.mark.kafka
def test_replay_round_trip(kafka_settings: Settings, kafka_env: dict[str, str]) -> None:
    r1, r2 = _dead_letter(kafka_settings, "r-1", 4), _dead_letter(kafka_settings, "r-2", 5)
    _dead_letter(kafka_settings, "r-3", 6, cut=True)
    cli = CliRunner()

    refused = cli.invoke(app, ["dlq", "replay", "--request-id", "r-3"], env=kafka_env)
    assert refused.exit_code == 1
    [error] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "[0]@6 (payload truncated: " in error

    dry = cli.invoke(
        app, ["dlq", "replay", "--stage", "captioner", "--max", "2", "--dry-run"], env=kafka_env
    )
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1] == "would replay 2 envelope(s)"
    assert _requests(kafka_settings) == []

    done = cli.invoke(
        app, ["dlq", "replay", "--request-id", "r-1", "--request-id", "r-2"], env=kafka_env
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "replayed 2 envelope(s)"
    replayed = sorted(_requests(kafka_settings))
    assert [(key, value) for key, value, _ in replayed] == [(b"key-r-1", r1), (b"key-r-2", r2)]
    source = topic_name(kafka_settings, "requests")
    assert replayed[0][2][REPLAY_HEADER] == f"{source}:0:4".encode()
    # the DLQ itself is left as it was
    dlq = consume_records(kafka_settings, "dlq", from_beginning=True, to_end=True)
    assert len(list(dlq)) == 3
