"""``caslie dataset accumulate``: the accumulator until it has caught up, then exit.

Takes the end offsets of ``enriched`` and ``labels`` at its start, runs the stage (same
consumer group and state as ``caslie run accumulator``: do not run both at once) until the
group's committed offsets reach them, stops the runner (which commits), then finishes the
stage (the unwritten joins as a last shard, marked written in the changelog)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from streams.config import Settings
from streams.exceptions import StreamError
from streams.lag import committed_offsets, topic_ends
from streams.runner import StageRunner
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
        counts = {
            t: sum(1 for tp in ends if tp[0] == topic_name(settings, t)) for t in stage.input_topics
        }
        if len(set(counts.values())) > 1:
            raise StreamError(
                "the join needs enriched and labels co-partitioned (the same partition count): "
                + ", ".join(f"{t} has {n}" for t, n in counts.items())
            )
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
        stage.finish()
        return Accumulated(stage.rows_written, sum(ends.values()))
    finally:
        if stage.follower is not None:
            stage.follower.close()  # again after finish(): harmless


def _caught_up(settings: Settings, group: str, ends: dict[tuple[str, int], int]) -> bool:
    done = committed_offsets(settings, group, [w for w, end in ends.items() if end > 0])
    return all(done.get(where, 0) >= end for where, end in ends.items() if end > 0)
