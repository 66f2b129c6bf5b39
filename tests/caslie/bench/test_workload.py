from __future__ import annotations

from pathlib import Path

from caslie.bench.workload import TASKS, build_workload


def test_every_request_is_unique_so_no_cache_can_answer_it(tmp_path: Path) -> None:
    first = build_workload(tmp_path, 2, first_variant=0)
    second = build_workload(tmp_path, 1, first_variant=2)
    assert len(first) == 14 and len(second) == 7
    assert sorted({r.task for r in first.requests}) == sorted(TASKS)
    requests = first.requests + second.requests
    assert len({r.request_id for r in requests}) == len(requests)
    # the captioning prompt's values differ between any two requests of a task
    contexts = [(r.task, str(r.inputs), str([s.caption_vars for s in r.slots])) for r in requests]
    assert len(set(contexts)) == len(contexts)
    assert all(r.slots and all(s.image for s in r.slots) for r in requests)
    assert [q["request_id"] for q in first.queries] == [r.request_id for r in first.requests]
