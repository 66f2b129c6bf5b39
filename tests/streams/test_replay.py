"""Choosing DLQ envelopes to replay, and refusing those that cannot be (no broker: the round
trip on Apache Kafka is in tests/caslie/test_dlq_cli.py)."""

from __future__ import annotations

import pytest

from schemas.dlq import DlqEnvelope, ErrorKind
from streams.config import DlqSettings, Settings
from streams.dlq import Failure, make_envelope
from streams.replay import NotReplayable, Selection, check_replayable, select


def _envelope(
    offset: int, rid: str | None, kind: ErrorKind = ErrorKind.PROCESSING, stage: str = "voter"
) -> DlqEnvelope:
    failure = Failure("caslie.captioned", 0, offset, b"k", b'{"x": 1}', kind, "why")
    return make_envelope(stage, failure, DlqSettings(), rid)


def _offsets(chosen: list[DlqEnvelope]) -> list[int]:
    return [e.offset for e in chosen]


def test_every_filter_given_must_match_and_max_keeps_the_first() -> None:
    envelopes = [
        _envelope(0, "r1"),
        _envelope(1, "r2", ErrorKind.SCHEMA),
        _envelope(2, "r3", stage="predictor"),
        _envelope(3, None),
    ]
    assert _offsets(select(envelopes, Selection())) == [0, 1, 2, 3]
    assert _offsets(select(envelopes, Selection(request_ids=frozenset({"r1", "r3"})))) == [0, 2]
    assert _offsets(select(envelopes, Selection(kinds=frozenset({"processing"})))) == [0, 2, 3]
    both = Selection(kinds=frozenset({"processing"}), stages=frozenset({"voter"}))
    assert _offsets(select(envelopes, both)) == [0, 3]
    assert _offsets(select(envelopes, Selection(max_records=2))) == [0, 1]
    later = Selection(since=envelopes[0].failed_at + 3600)
    assert select(envelopes, later) == []


def test_truncated_payloads_and_foreign_topics_are_refused_by_name() -> None:
    settings = Settings()
    cut = make_envelope(
        "voter",
        Failure("caslie.captioned", 1, 9, b"k", b"x" * 100, ErrorKind.SCHEMA, "why"),
        DlqSettings(payload_max_bytes=10),
    )
    foreign = _envelope(4, "r1").model_copy(update={"topic": "other.captioned"})
    check_replayable(settings, [_envelope(0, "r1")])
    with pytest.raises(NotReplayable) as info:
        check_replayable(settings, [_envelope(0, "r1"), cut, foreign])
    message = str(info.value)
    assert message.startswith("cannot replay 2 envelope(s): ")
    assert "caslie.captioned[1]@9 (payload truncated: 100 bytes)" in message
    assert "other.captioned[0]@4" in message
