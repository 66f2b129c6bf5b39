"""``caslie dataset accumulate``: the accumulator until it has caught up, then exit.

Takes the end offsets of ``enriched`` and ``labels`` at its start, runs the stage (same
consumer group and state as ``caslie run accumulator``: do not run both at once) until the
group's committed offsets reach them, stops the runner (which commits), then writes the
unwritten joins as a last shard and marks them written in the changelog."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from streams.clients import make_producer
from streams.codec import encode_value
from streams.config import Settings
from streams.exceptions import StreamError
from streams.lag import committed_offsets, topic_ends
from streams.runner import DEDUPE_HEADER, StageRunner
from streams.stage import Output
from streams.topics import topic_name
from training.accumulate.app import build_accumulator
from training.accumulate.stage import STAGE

log = logging.getLogger(__name__)
_CHECK_EVERY_S = 0.5


@dataclass(frozen=True)
class Accumulated:
    """What one bounded run did."""

    rows_written: int
    records: int  # input records up to the end offsets taken at the start


def accumulate(settings: Settings, stop: threading.Event, timeout_s: float = 3600.0) -> Accumulated:
    """Run the accumulator up to the input topics' end offsets taken now. Raises
    :class:`StreamError` when the topics are missing, the stage fails, or it has not caught
    up within ``timeout_s`` (nothing is lost: the next run goes on)."""
    group = f"{settings.topic_prefix}{STAGE}"
    stage = build_accumulator(settings)
    errors: list[BaseException] = []
    try:
        ends = topic_ends(settings, stage.input_topics)
        missing = [
            t
            for t in stage.input_topics
            if not any(tp[0] == topic_name(settings, t) for tp in ends)
        ]
        if missing:
            raise StreamError(
                f"topics {', '.join(missing)} are missing (create them with 'caslie topics create')"
            )
        runner = StageRunner(stage, settings, group_id=group)
        halt = threading.Event()

        def target() -> None:
            try:
                runner.run(halt)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, name="accumulate-bounded")
        thread.start()
        deadline = time.monotonic() + timeout_s
        try:
            while thread.is_alive() and not stop.is_set():
                if stage.ready(0) and _caught_up(settings, group, ends):
                    break
                if time.monotonic() > deadline:
                    raise StreamError(f"not caught up within {timeout_s:.0f}s (run it again)")
                time.sleep(_CHECK_EVERY_S)
        finally:
            halt.set()
            thread.join()
        if errors:
            raise StreamError(f"the accumulator failed: {type(errors[0]).__name__}: {errors[0]}")
        if stage.ready(0):
            _produce(settings, stage.flush())
        return Accumulated(stage.rows_written, sum(ends.values()))
    finally:
        if stage.follower is not None:
            stage.follower.close()


def _caught_up(settings: Settings, group: str, ends: dict[tuple[str, int], int]) -> bool:
    done = committed_offsets(settings, group, [w for w, end in ends.items() if end > 0])
    return all(done.get(where, 0) >= end for where, end in ends.items() if end > 0)


def _produce(settings: Settings, outputs: list[Output]) -> None:
    """The last shard's marks onto the changelog (outside the runner: it has stopped)."""
    if not outputs:
        return
    producer = make_producer(settings)
    for out in outputs:
        producer.produce(
            topic_name(settings, out.logical_topic),
            key=out.key.encode(),
            value=encode_value(out.value),
            headers=[(DEDUPE_HEADER, out.dedupe_id.encode())],
        )
    left = producer.flush(30)
    if left:  # the rows are in the shard; only a later rewrite of them is at stake
        log.warning("%d written-marks undelivered: those rows are written again next time", left)
