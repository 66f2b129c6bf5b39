"""The join rules of one request id, as pure functions on its :class:`JoinState`.

- A record waits for its label and a label for its record; whichever comes second finishes
  the join. A record arriving again replaces the one kept (the newest enrichment).
- The latest label wins: larger ``event_time`` (none counts as 0), then the later offset on
  ``labels`` (a request's labels share one partition). An older label changes nothing.
- A finished join is *unwritten* while its (record, label) digest differs from the one last
  written: a new label after a write makes a new row, the same pair read again does not.
- A join expires ``label_wait_s`` after its last change, unless it is unwritten: a record that
  never got its label, a label whose record never came, or a written example kept so that a
  late relabel can be joined again.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from schemas.accumulator import JoinState
from schemas.records import EnrichedRecord, LabelEvent

Expiry = Literal["record", "label", "written"]


def digest(record: EnrichedRecord, label: LabelEvent) -> str:
    """What a written pair is remembered by (32 hex digits of sha256)."""
    return hashlib.sha256(record.to_json() + b"\0" + label.to_json()).hexdigest()[:32]


def with_record(state: JoinState | None, record: EnrichedRecord, at: float) -> JoinState:
    """The state after ``record`` arrived at ``at``."""
    if state is None:
        return JoinState(request_id=record.request_id, record=record, updated_at=at)
    return state.model_copy(update={"record": record, "updated_at": at})


def with_label(
    state: JoinState | None, label: LabelEvent, offset: int, at: float
) -> JoinState | None:
    """The state after ``label`` (at ``offset`` on ``labels``) arrived at ``at``; ``None``
    when it is older than the label kept (nothing changes). The label kept, read again (a
    batch replayed after an aborted transaction or a crash), gives the state as it is: its
    changelog record is produced again, since the replayed batch's first one may never have
    been committed."""
    if state is None:
        return JoinState(
            request_id=label.request_id, label=label, label_offset=offset, updated_at=at
        )
    if state.label is not None:
        new, kept = _rank(label, offset), _rank(state.label, state.label_offset)
        if new == kept and label == state.label:
            return state
        if new <= kept:
            return None
    return state.model_copy(update={"label": label, "label_offset": offset, "updated_at": at})


def _rank(label: LabelEvent, offset: int) -> tuple[float, int]:
    return (label.event_time or 0.0, offset)


def unwritten(state: JoinState) -> bool:
    """Finished (record and label) and not written as it is now."""
    if state.record is None or state.label is None:
        return False
    return state.written != digest(state.record, state.label)


def written(state: JoinState) -> JoinState:
    """The state once its pair is in a shard."""
    assert state.record is not None and state.label is not None
    return state.model_copy(update={"written": digest(state.record, state.label)})


def expiry(state: JoinState, now: float, wait_s: float) -> Expiry | None:
    """Why the state is dropped now, or ``None`` while it waits (unwritten ones never
    expire: they are written first)."""
    if now - state.updated_at < wait_s or unwritten(state):
        return None
    if state.label is None:
        return "record"
    if state.record is None:
        return "label"
    return "written"
