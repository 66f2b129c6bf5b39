"""One small generated set shared by the synthetic-data tests (drawing it once keeps them fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.synthetic import SyntheticSet, generate


@pytest.fixture(scope="package")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSet:
    return generate(tmp_path_factory.mktemp("synthetic") / "set", 48, seed=7)


def image_path(url: str) -> Path:
    assert url.startswith("file:///")
    return Path(url.removeprefix("file://"))
