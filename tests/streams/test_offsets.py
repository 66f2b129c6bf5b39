from __future__ import annotations

import pytest

from streams.offsets import OffsetTracker

TP = ("t", 0)


def test_commits_only_contiguous_completed_offsets() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.add(TP, offset)
    tracker.expect(TP, 11, 0)  # done out of order
    assert tracker.committable() == {}
    tracker.expect(TP, 10, 2)
    tracker.ack(TP, 10)
    assert tracker.committable() == {}  # one output still unacknowledged
    tracker.ack(TP, 10)
    assert tracker.committable() == {TP: 12}  # 10 and 11 done, 12 pending
    tracker.expect(TP, 12, 1)
    tracker.ack(TP, 12)
    assert tracker.committable() == {TP: 13}
    assert tracker.committable() == {}  # nothing new
    assert tracker.in_flight() == 0


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.add(("t", 0), 5)
    tracker.add(("t", 1), 7)
    tracker.expect(("t", 1), 7, 0)
    assert tracker.committable() == {("t", 1): 8}
    assert tracker.in_flight_for([("t", 0)]) == 1


def test_forgotten_partition_ignores_late_acks() -> None:
    tracker = OffsetTracker()
    tracker.add(TP, 1)
    tracker.expect(TP, 1, 1)
    tracker.forget([TP])
    tracker.ack(TP, 1)  # a delivery after revocation must not raise
    assert tracker.committable() == {}


def test_ack_from_an_earlier_assignment_is_ignored() -> None:
    """Lost (session timeout), assigned again, the record read again: the first reading's
    late delivery report must neither raise nor count for the second reading."""
    tracker = OffsetTracker()
    tracker.add(TP, 6)
    first = tracker.expect(TP, 6, 1)
    tracker.forget([TP])
    tracker.add(TP, 6)
    tracker.ack(TP, 6, first)  # late report of the first reading
    second = tracker.expect(TP, 6, 1)
    assert second != first
    assert tracker.committable() == {}
    tracker.ack(TP, 6, second)
    assert tracker.committable() == {TP: 7}


def test_redelivered_offset_is_tracked_once() -> None:
    tracker = OffsetTracker()
    tracker.add(TP, 3)
    tracker.add(TP, 3)
    assert tracker.in_flight() == 1


def test_ack_before_expect_is_a_bug() -> None:
    tracker = OffsetTracker()
    tracker.add(TP, 1)
    with pytest.raises(RuntimeError):
        tracker.ack(TP, 1)


def test_finished_records_waiting_for_the_commit_are_not_in_flight() -> None:
    """Backpressure counts work not done yet; counting records that only wait for the next
    periodic commit capped throughput at max_in_flight per commit interval."""
    tracker = OffsetTracker()
    for offset in range(4):
        tracker.add(TP, offset)
    tracker.expect(TP, 0, 0)  # done, nothing produced
    tracker.expect(TP, 1, 1)  # one output not yet acknowledged
    tracker.expect(TP, 2, 1)
    tracker.ack(TP, 2)  # done
    assert tracker.in_flight() == 2  # 1 awaits its ack, 3 is not processed yet
    assert tracker.in_flight_for([TP]) == 4  # ... but all four are uncommitted
