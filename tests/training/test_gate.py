from training.gate import gate
from training.metrics import score_task

GOLD = list("BCDBCDBCDB")


def _score(pred: str) -> dict:  # type: ignore[type-arg]
    return {"SA": score_task("SA", GOLD, list(pred))}


def test_gate_refuses_a_worse_adapter() -> None:
    incumbent = _score("BCDBCDBCDD")  # 9/10 right
    worse = _score("BBBBBBBBBB")
    decision = gate(worse, incumbent, margin=0.01)
    assert not decision.promote and "worse on SA" in decision.reason


def test_gate_needs_the_margin() -> None:
    incumbent = _score("BCDBCDBCDD")
    assert not gate(_score("BCDBCDBCDD"), incumbent, margin=0.01).promote  # equal
    assert gate(_score(GOLD), incumbent, margin=0.01).promote


def test_parse_failures_cannot_win() -> None:
    incumbent = _score("BCDBCDBCDD")
    mostly_failed = {
        "SA": score_task("SA", GOLD, ["B"] + [None] * 9)
    }  # paper metric 1.0, strict low
    assert mostly_failed["SA"].paper == 1.0
    assert not gate(mostly_failed, incumbent).promote


def test_first_version_passes() -> None:
    assert gate(_score(GOLD), None).promote
    assert not gate({}, None).promote


def test_negative_margin_accepts_a_bounded_loss() -> None:
    incumbent = _score("BCDBCDBCDD")
    slightly_worse = _score("BCDBCDBCBD")
    assert gate(slightly_worse, incumbent, margin=-0.5).promote
    assert not gate(_score("BBBBBBBBBB"), incumbent, margin=-0.1).promote
