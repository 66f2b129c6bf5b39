"""Build the accumulator: its table over this replica's state folder, its follower, its
dataset."""

from __future__ import annotations

from typing import Any

from schemas.accumulator import JoinState
from streams.artifacts import dataset_store_for
from streams.config import Settings
from streams.router.store import StateStore
from streams.router.tables import Table, TableFollower, state_dir
from training.accumulate.stage import CHANGELOG, STAGE, AccumulatorStage

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
    return AccumulatorStage(table, dataset_store_for(settings), settings.training, follower)
