from __future__ import annotations

import pytest

from streams.offsets import OffsetTracker

TP = ("t", 0)


def test_commits_only_contiguous_completed_offsets() -> None:
    tracker = OffsetTracker()
    epoch = tracker.add(TP, [10, 11, 12])
    tracker.expect(TP, 11, 0, epoch)  # done out of order
    assert tracker.committable() == {}
    tracker.expect(TP, 10, 2, epoch)
    tracker.ack(TP, 10, epoch)
    assert tracker.committable() == {}  # one output still unacknowledged
    tracker.ack(TP, 10, epoch)
    assert tracker.committable() == {TP: 12}  # 10 and 11 done, 12 pending
    tracker.expect(TP, 12, 1, epoch)
    tracker.ack(TP, 12, epoch)
    assert tracker.committable() == {TP: 13}
    assert tracker.committable() == {}  # nothing new
    assert tracker.in_flight() == 0


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.add(("t", 0), [5])
    epoch = tracker.add(("t", 1), [7])
    tracker.expect(("t", 1), 7, 0, epoch)
    assert tracker.committable() == {("t", 1): 8}
    assert tracker.in_flight() == 1


def test_forgotten_partition_ignores_late_acks() -> None:
    tracker = OffsetTracker()
    epoch = tracker.add(TP, [1])
    tracker.expect(TP, 1, 1, epoch)
    tracker.forget([TP])
    tracker.ack(TP, 1, epoch)  # a delivery after revocation must not raise
    assert tracker.committable() == {}
    assert tracker.in_flight() == 0


def test_ack_from_an_earlier_assignment_is_ignored() -> None:
    """Lost (session timeout), assigned again, the record read again: the first reading's
    late delivery report must neither raise nor count for the second reading."""
    tracker = OffsetTracker()
    first = tracker.add(TP, [6])
    tracker.expect(TP, 6, 1, first)
    tracker.forget([TP])
    second = tracker.add(TP, [6])
    assert second != first
    tracker.ack(TP, 6, first)  # late report of the first reading
    assert tracker.expect(TP, 6, 1, second)
    assert tracker.committable() == {}
    tracker.ack(TP, 6, second)
    assert tracker.committable() == {TP: 7}


def test_a_copy_buffered_before_a_revocation_is_stale_after_reassignment() -> None:
    """Sticky assignment gives a revoked partition back: the copy of a record buffered
    before the revocation must not pass as current beside the new reading (at-least-once
    it drove the outstanding count to -1 and the partition never committed again)."""
    tracker = OffsetTracker()
    old = tracker.add(TP, [4, 5])
    tracker.forget([TP])  # revoked while 4 and 5 wait in the hand-off
    new = tracker.add(TP, [4, 5])  # assigned again, read again
    assert not tracker.current(TP, old)
    assert tracker.current(TP, new)
    assert not tracker.expect(TP, 4, 1, old)  # the stale copy is refused ...
    assert tracker.expect(TP, 4, 1, new)  # ... the current one counts once
    tracker.ack(TP, 4, new)
    assert tracker.expect(TP, 5, 0, new)
    assert tracker.committable() == {TP: 6}
    assert tracker.in_flight() == 0


def test_expecting_a_live_record_twice_is_refused() -> None:
    """A second copy of a live record (re-delivered) produces nothing and counts nothing."""
    tracker = OffsetTracker()
    epoch = tracker.add(TP, [3])
    assert tracker.expect(TP, 3, 1, epoch)
    assert not tracker.expect(TP, 3, 1, epoch)
    tracker.ack(TP, 3, epoch)
    assert tracker.committable() == {TP: 4}
    assert tracker.in_flight() == 0


def test_redelivered_offset_is_tracked_once() -> None:
    tracker = OffsetTracker()
    tracker.add(TP, [3])
    tracker.add(TP, [3])
    assert tracker.in_flight() == 1


def test_ack_before_expect_is_a_bug() -> None:
    tracker = OffsetTracker()
    epoch = tracker.add(TP, [1])
    with pytest.raises(RuntimeError):
        tracker.ack(TP, 1, epoch)


def test_finished_records_waiting_for_the_commit_are_not_in_flight() -> None:
    """Backpressure counts work not done yet; counting records that only wait for the next
    periodic commit capped throughput at max_in_flight per commit interval."""
    tracker = OffsetTracker()
    epoch = tracker.add(TP, range(4))
    tracker.expect(TP, 0, 0, epoch)  # done, nothing produced
    tracker.expect(TP, 1, 1, epoch)  # one output not yet acknowledged
    tracker.expect(TP, 2, 1, epoch)
    tracker.ack(TP, 2, epoch)  # done
    assert tracker.in_flight() == 2  # 1 awaits its ack, 3 is not processed yet
    assert tracker.awaiting_acks([TP]) == 1


def test_a_leaving_partition_finishes_its_batch_but_starts_no_other() -> None:
    """While a revocation waits for the batch in progress, the processing thread must not
    take the partition's next buffered records (the wait grew by a batch each time)."""
    tracker = OffsetTracker()
    epoch = tracker.add(TP, [1, 2])
    tracker.leaving([TP])
    assert not tracker.current(TP, epoch)  # a new batch drops them ...
    assert tracker.expect(TP, 1, 1, epoch)  # ... the batch in progress still counts
    tracker.ack(TP, 1, epoch)
    assert tracker.committable() == {TP: 2}
    tracker.forget([TP])
    assert tracker.current(TP, tracker.add(TP, [2]))  # assigned again: a fresh start


def test_offsets_only_go_forward_within_an_epoch() -> None:
    """A re-delivery below what the epoch consumed (committed or live) is not tracked
    again; a new epoch (rewind, reassignment) starts from wherever it is told."""
    tracker = OffsetTracker()
    assert tracker.next_offset(TP) is None
    epoch = tracker.add(TP, [0, 1, 2])
    for offset in (0, 1, 2):
        tracker.expect(TP, offset, 0, epoch)
    assert tracker.committable() == {TP: 3}
    assert tracker.next_offset(TP) == 3
    assert tracker.add(TP, [0, 1, 2, 3]) == epoch  # 0-2 again: only 3 is new
    assert tracker.in_flight() == 1
    assert not tracker.expect(TP, 1, 1, epoch)  # committed already: produces nothing
    assert tracker.next_offset(TP) == 4
    tracker.forget([TP])
    assert tracker.next_offset(TP) is None
    fresh = tracker.add(TP, [1])
    assert fresh != epoch and tracker.next_offset(TP) == 2
