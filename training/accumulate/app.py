"""Build the accumulator: its table over this replica's state folder, its follower, its
dataset."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from schemas.accumulator import JoinState
from streams.artifacts import dataset_store_for
from streams.clients import make_producer
from streams.codec import encode_value
from streams.config import Settings
from streams.router.store import StateStore
from streams.router.tables import Table, TableFollower, state_dir
from streams.runner import DEDUPE_HEADER
from streams.stage import Output
from streams.topics import topic_name
from training.accumulate.stage import CHANGELOG, STAGE, AccumulatorStage

log = logging.getLogger(__name__)

#: The accumulator's changelog -> its column family.
FAMILIES = {CHANGELOG: "joins"}


def build_accumulator(settings: Settings) -> AccumulatorStage:
    """The stage over ``training.state_dir`` (else ``cache_dir``/accumulator-state/<prefix>);
    its table starts following the changelog at once (the store's memory bounds are the
    router's settings), and the stage reports ready once restored."""
    folder = state_dir(settings, settings.training.state_dir, STAGE)
    store = StateStore.open(folder, settings.router, FAMILIES)
    table: Table[JoinState] = Table(CHANGELOG, JoinState, store)
    tables: dict[str, Table[Any]] = {CHANGELOG: table}
    follower = TableFollower(settings, store, tables, name=STAGE).start()
    return AccumulatorStage(
        table,
        dataset_store_for(settings),
        settings.training,
        follower,
        publish=partial(publish, settings),
    )


def publish(settings: Settings, outputs: list[Output]) -> None:
    """Produce changelog outputs outside the runner (the last shard's written-marks, after it
    stopped); undelivered ones only mean those rows are written again next time."""
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
    if left:
        log.warning("%d written-marks undelivered: those rows are written again next time", left)
