"""A user's mistake ends in one ``error:`` line on stderr and its own exit code, never a
traceback: each case as a new user would make it, and the codes' documentation."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from caslie.cli import app
from caslie.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
#: Nothing listens on the discard port: connections are refused at once.
NO_BROKER = "127.0.0.1:9"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """The CLI's root callback installs a handler on the runner's stderr: undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    base = {"CASLIE_BOOTSTRAP_SERVERS": NO_BROKER, "CASLIE_CONFIG": ""}
    return CliRunner().invoke(app, list(args), env={**base, **(env or {})})


def one_error_line(result: Result) -> str:
    """The stderr of a refused command: exactly one line, ``error: ...``, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


def test_every_code_is_distinct_and_documented_in_the_readme() -> None:
    values = [code.value for code in ExitCode.__members__.values()]
    assert len(values) == len(set(values)), "an alias: two names share a code"
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Exit codes") :].split("\n## ", 1)[0]
    documented = {int(n) for n in re.findall(r"(?:^|· )(\d+) ", section, flags=re.MULTILINE)}
    assert documented == set(values)
    source = (ROOT / "caslie" / "exit_codes.py").read_text()
    for name in ExitCode.__members__:
        if name != "OK":
            assert re.search(rf"#: .*\n(    #: .*\n)*    {name} = ", source), f"{name} undocumented"


@pytest.mark.parametrize("command", [["topics", "list"], ["topics", "create"]])
def test_topics_without_a_broker_say_so_within_seconds(command: list[str]) -> None:
    started = time.monotonic()
    result = invoke(*command)
    assert result.exit_code == ExitCode.UNAVAILABLE
    line = one_error_line(result)
    assert f"broker {NO_BROKER} did not answer" in line and "caslie broker" in line
    assert time.monotonic() - started < 15  # the default wait is 5 s, not 30


def test_status_without_a_broker_is_one_line() -> None:
    result = invoke("status", "--once")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "did not answer" in one_error_line(result)


def test_an_invalid_log_level_names_the_setting_and_the_allowed_levels() -> None:
    result = invoke("--log-level", "foo", "topics", "list")
    assert result.exit_code == ExitCode.INVALID_SETTING
    line = one_error_line(result)
    assert "log_level" in line and "'foo'" in line and "DEBUG, INFO, WARNING, ERROR" in line
    assert invoke("--log-level", "debug", "run", "nosuch").exit_code == ExitCode.UNKNOWN_STAGE


def test_an_invalid_env_value_names_its_variable() -> None:
    result = invoke("topics", "list", env={"CASLIE_PARTITIONS": "abc"})
    assert result.exit_code == ExitCode.INVALID_SETTING
    assert "setting partitions (CASLIE_PARTITIONS) = 'abc'" in one_error_line(result)


def test_a_table_variable_that_is_not_json_names_its_field() -> None:
    result = invoke("topics", "list", env={"CASLIE_KAFKA": "{bad"})
    assert result.exit_code == ExitCode.INVALID_SETTING
    assert 'error parsing value for field "kafka"' in one_error_line(result)


def test_a_missing_config_file_named_by_the_variable(tmp_path: Path) -> None:
    result = invoke("topics", "list", env={"CASLIE_CONFIG": str(tmp_path / "none.toml")})
    assert result.exit_code == ExitCode.CONFIG_FILE
    assert "none.toml does not exist" in one_error_line(result)


def test_an_unknown_config_key_is_an_invalid_setting(tmp_path: Path) -> None:
    config = tmp_path / "caslie.toml"
    config.write_text("partitons = 3\n")
    result = invoke("-c", str(config), "topics", "list")
    assert result.exit_code == ExitCode.INVALID_SETTING
    assert "unknown setting partitons" in one_error_line(result)


@pytest.mark.parametrize("text", [None, "partitions = [\n"])
def test_a_missing_or_broken_config_file(tmp_path: Path, text: str | None) -> None:
    config = tmp_path / "caslie.toml"
    if text is not None:
        config.write_text(text)
    result = invoke("-c", str(config), "topics", "list")
    assert result.exit_code == ExitCode.CONFIG_FILE
    assert one_error_line(result).startswith("error: config file: ")


def test_run_of_an_unknown_stage_lists_the_known_ones() -> None:
    result = invoke("run", "captioners")
    assert result.exit_code == ExitCode.UNKNOWN_STAGE
    assert "unknown stage 'captioners'; known: router, captioner" in one_error_line(result)


def test_run_without_tesseract_is_a_missing_backend_not_a_broker_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract binary on it
    result = invoke("run", "captioner", env={"CASLIE_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == ExitCode.BACKEND_MISSING  # not 4: the broker is not the problem
    assert "needs Tesseract: apt-get install tesseract-ocr" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_a_backend_but_no_model_folder_is_an_invalid_setting(tmp_path: Path) -> None:
    env = {
        "CASLIE_CACHE_DIR": str(tmp_path),
        "CASLIE_CAPTIONER__BACKEND": "transformers",
        "CASLIE_CAPTIONER__OCR": "none",
    }
    result = invoke("run", "captioner", env=env)
    assert result.exit_code == ExitCode.INVALID_SETTING
    assert "captioner.model must name a model folder" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["rollback"], ["rollback", "nope"], ["eval", "--name", "x"]])
def test_an_adapter_the_registry_lacks(command: list[str], tmp_path: Path) -> None:
    result = invoke(*command, env={"CASLIE_PREDICTOR__REGISTRY": str(tmp_path / "registry")})
    assert result.exit_code == ExitCode.UNKNOWN_ADAPTER
    assert "has no version of" in one_error_line(result)


def test_rollback_needs_an_earlier_version_and_changes_nothing_without_a_broker(
    tmp_path: Path,
) -> None:
    from streams.artifacts.registry import AdapterRegistry
    from streams.artifacts.storage import open_storage

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    registry = AdapterRegistry(open_storage(str(tmp_path / "registry")))
    registry.set_current("generalist", registry.publish("generalist", adapter, "m").version)
    env = {"CASLIE_PREDICTOR__REGISTRY": str(tmp_path / "registry")}
    only = invoke("rollback", env=env)
    assert only.exit_code == ExitCode.NOTHING_TO_ROLL_BACK
    assert "generalist has no version before v1" in one_error_line(only)
    registry.set_current("generalist", registry.publish("generalist", adapter, "m").version)
    unreachable = invoke("rollback", env=env)
    assert unreachable.exit_code == ExitCode.UNAVAILABLE
    assert "did not answer" in one_error_line(unreachable)
    assert registry.current("generalist") == 2  # nothing changed: no announcement possible


def test_an_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("schemas", "export", str(blocker / "schemas"))
    assert result.exit_code == ExitCode.OUTPUT_UNWRITABLE
    assert f"cannot write {blocker / 'schemas'}" in one_error_line(result)


def test_run_without_a_broker_stops_with_4_before_any_stage_starts(tmp_path: Path) -> None:
    started = time.monotonic()
    env = {"CASLIE_CACHE_DIR": str(tmp_path), "CASLIE_VOTER__JUDGES": '["overlap"]'}
    result = invoke("run", "voter", "--wait", "1", env=env)  # a voter without models
    assert result.exit_code == ExitCode.UNAVAILABLE
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"broker {NO_BROKER} did not answer" in errors[0]
    assert "rdkafka" not in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 15


def test_eval_of_a_missing_data_file(tmp_path: Path) -> None:
    result = invoke("eval", "--data", str(tmp_path / "missing.json"))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "cannot read" in one_error_line(result)


def test_status_refuses_a_metrics_value_that_is_not_a_url() -> None:
    result = invoke("status", "--once", "-m", "captioner:9464")
    assert result.exit_code == ExitCode.USAGE
    assert "not 'captioner:9464'" in one_error_line(result)
