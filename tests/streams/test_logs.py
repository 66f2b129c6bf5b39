from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from streams.logs import configure_logging

URL = "https://bob:hunter2@cdn.example.com/a.png?X-Amz-Signature=s1g&X-Amz-Credential=AKIAX"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_lines_carry_no_url_credentials(
    fmt: str, root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", fmt)
    try:
        raise ValueError(f"fetching {URL} failed")
    except ValueError:
        logging.getLogger("tests.logs").exception("image %s failed", URL)
    line = capsys.readouterr().err
    assert "cdn.example.com" in line and "ValueError" in line
    for secret in ("hunter2", "s1g", "AKIAX"):
        assert secret not in line
    if fmt == "json":
        msg = orjson.loads(line)["msg"]
        assert msg.startswith("image https://<redacted>@cdn.example.com/a.png?")
