from collections import Counter
from pathlib import Path

import orjson
import pytest

from training.synthetic.__main__ import main


def test_the_cli_writes_a_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([str(out), "--claims", "4", "--seed", "2", "--keys", "Brand,Size"]) == 0
    for name in ("catalog.jsonl", "claims.jsonl", "queries.jsonl", "labels.jsonl", "splits.json"):
        assert (out / name).is_file()
    labels = [orjson.loads(line) for line in (out / "labels.jsonl").read_bytes().splitlines()]
    assert len(labels) == 12
    ae = [orjson.loads(e["label"]) for e in labels if e["task"] == "AE"]
    assert all(list(v) == ["Brand", "Size"] for v in ae)
    assert len(list((out / "images").glob("*.png"))) >= 4 + 2
    assert "images/s" in capsys.readouterr().err


def test_the_cli_has_help_and_refuses_bad_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "--claims" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main([str(tmp_path / "x"), "--keys", "Flavour"])
    assert refused.value.code == 2


def test_the_cli_writes_listings_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([str(out), "--claims", "0", "--listings", "6", "--seed", "1"]) == 0
    assert not (out / "claims.jsonl").exists()
    labels = (out / "listings" / "labels.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["task"] for line in labels] == ["LG"] * 6
    assert len(orjson.loads((out / "listings" / "aspect_schemas.json").read_bytes())) == 4
    assert "6 LG listings" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main([str(tmp_path / "y"), "--claims", "0"])
    assert refused.value.code == 2


def test_the_cli_writes_a_shop_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([str(out), "--claims", "0", "--shop", "5", "--seed", "1"]) == 0
    assert not (out / "claims.jsonl").exists() and not (out / "listings").exists()
    labels = [orjson.loads(x) for x in (out / "shop" / "labels.jsonl").read_bytes().splitlines()]
    assert Counter(x["task"] for x in labels) == dict.fromkeys(
        ("AP", "CC", "PRP", "PSI", "MPC", "SR"), 5
    )
    for name in ("catalog.jsonl", "reviews.jsonl", "queries.jsonl", "splits.json"):
        assert (out / "shop" / name).is_file()
    assert "30 shop queries" in capsys.readouterr().err
