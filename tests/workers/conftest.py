"""Fixtures of the workers' tests."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def tesseract_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every Tesseract process started during the test."""
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(list(args))
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    return runs
