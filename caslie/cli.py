"""The ``caslie`` command: broker, topics, produce, consume, run, schemas, demo, bench,
retrain, eval, rollback, dlq."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, cast

import typer

from caslie.exit_codes import ExitCode
from streams.config import Settings, load_settings
from streams.logs import configure_logging

if TYPE_CHECKING:
    from pydantic import ValidationError

    from training.dpo import DpoSettings
    from training.lora import LoraSettings
    from training.retrain import Stage

log = logging.getLogger("caslie")

app = typer.Typer(
    name="caslie",
    help="CASLIE as a streaming service: Kafka topics in, task predictions out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Create and list caslie topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schema files for external producers.", no_args_is_help=True)
dataset_app = typer.Typer(
    help="The accumulated training dataset: fill it, snapshot it, list snapshots.",
    no_args_is_help=True,
)
app.add_typer(topics_app, name="topics")
app.add_typer(dataset_app, name="dataset")
app.add_typer(schemas_app, name="schemas")
dlq_app = typer.Typer(help="The dead-letter queue: replay chosen envelopes.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML config file (also CASLIE_CONFIG).", show_default=False
    ),
]


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOption = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers", "-b", help="Kafka bootstrap servers (CASLIE_BOOTSTRAP_SERVERS)."
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if bootstrap_servers:
        overrides["bootstrap_servers"] = bootstrap_servers
    if log_level:
        overrides["log_level"] = log_level
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        settings = load_settings(config, **overrides)
    except ValidationError as exc:
        _fail(ExitCode.INVALID_SETTING, _invalid_settings(exc))
    except SettingsError as exc:  # a CASLIE_* variable of a list or table is not JSON
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        _fail(ExitCode.INVALID_SETTING, f"invalid configuration: {exc}{cause}")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _fail(ExitCode.CONFIG_FILE, f"config file: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


def _fail(code: ExitCode, reason: str) -> NoReturn:
    """End the command with ``error: REASON`` on stderr (one line) and exit ``code``."""
    typer.echo(f"error: {reason}", err=True)
    raise typer.Exit(code)


def _invalid_settings(exc: ValidationError) -> str:
    """One line naming each invalid setting, its value, its variable and what is allowed."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        variable = "CASLIE_" + "__".join(str(part) for part in error["loc"]).upper()
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting {name}")
        else:
            reason = error["msg"].removeprefix("Value error, ")
            problems.append(f"setting {name} ({variable}) = {error['input']!r}: {reason}")
    return "invalid configuration: " + "; ".join(problems)


#: Seconds an interactive command waits for the broker before it says it is unreachable.
BROKER_WAIT_S = 5.0


def _broker_or_fail(settings: Settings, timeout: float = BROKER_WAIT_S) -> None:
    """Return once the broker answers; else end the command with exit 4 and one line."""
    from streams.clients import wait_for_broker

    try:
        wait_for_broker(settings, timeout=timeout)
    except TimeoutError as exc:
        hint = "start one (caslie broker) or name it: --bootstrap-servers, CASLIE_BOOTSTRAP_SERVERS"
        _fail(ExitCode.UNAVAILABLE, f"{exc} ({hint})")


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _stop_event() -> threading.Event:
    """An event set by the first SIGINT/SIGTERM; a second one exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            os._exit(128 + signum)  # a second signal: no clean-up, now
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
def broker(
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: a free one).")
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            "--broker",
            help="apache (Apache Kafka from the cached jars, needs Java), tansu (embedded, "
            "memory storage) or auto (apache when Java and the jars are there, else tansu).",
        ),
    ] = "auto",
    fetch_jars: Annotated[
        bool,
        typer.Option(
            "--fetch-jars", help="Download the Apache Kafka jars with Maven first (once)."
        ),
    ] = False,
) -> None:
    """Start a local single-node broker until Ctrl-C; prints its address on stdout.

    Apache Kafka (KRaft) runs from the jars in ~/.cache/caslie/kafka-<version>/libs (or
    CASLIE_KAFKA_LIBS) when Java is installed; otherwise the embedded tansu broker starts,
    which offers at-least-once delivery only (no transactions), keeps nothing, and refuses
    kcat 1.7 / librdkafka 2.0 clients. Neither keeps data after it stops. Exit code 2 for an
    unknown --broker, 4 when the broker asked for cannot start.
    """
    from streams.apache_kafka import fetch_jars as fetch
    from streams.exceptions import BrokerUnavailable
    from streams.local_broker import KINDS, describe, start_local_broker

    if kind not in KINDS:
        typer.echo(f"error: --broker must be one of {', '.join(KINDS)}, not {kind!r}", err=True)
        raise typer.Exit(ExitCode.USAGE)
    stop = _stop_event()
    try:
        if fetch_jars:
            typer.echo("fetching the Apache Kafka jars with Maven...", err=True)
            typer.echo(f"jars in {fetch()}", err=True)
        local, fallback = start_local_broker(kind, port)
    except BrokerUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    typer.echo(local.bootstrap_servers, err=False)
    sys.stdout.flush()
    typer.echo(describe(local, fallback), err=True)
    typer.echo(f"export CASLIE_BOOTSTRAP_SERVERS={local.bootstrap_servers}", err=True)
    try:
        while not stop.wait(0.5):
            if not local.running():
                typer.echo(f"error: the {local.name} broker exited", err=True)
                raise typer.Exit(ExitCode.UNAVAILABLE)
    finally:
        local.stop()


WaitOption = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for the broker to answer.")
]


@topics_app.command("create")
def topics_create(ctx: typer.Context, wait: WaitOption = BROKER_WAIT_S) -> None:
    """Create every caslie topic (existing ones are kept). Exit code 4 when the broker does
    not answer within --wait seconds."""
    from confluent_kafka import KafkaException

    from streams.clients import create_topics

    settings = _settings(ctx)
    _broker_or_fail(settings, wait)
    try:
        outcome = create_topics(settings)
    except KafkaException as exc:
        _fail(ExitCode.UNAVAILABLE, f"creating the topics failed: {exc.args[0].str()}")
    for name, status in sorted(outcome.items()):
        typer.echo(f"{name}\t{status}")


@topics_app.command("list")
def topics_list(ctx: typer.Context, wait: WaitOption = BROKER_WAIT_S) -> None:
    """List the caslie topics on the broker with their partition counts. Exit code 4 when the
    broker does not answer within --wait seconds."""
    from confluent_kafka import KafkaException

    from streams.clients import make_admin

    settings = _settings(ctx)
    _broker_or_fail(settings, wait)
    try:
        metadata = make_admin(settings).list_topics(timeout=15)
    except KafkaException as exc:
        _fail(ExitCode.UNAVAILABLE, f"listing the topics failed: {exc.args[0].str()}")
    for name in sorted(metadata.topics):
        if name.startswith(settings.topic_prefix):
            typer.echo(f"{name}\t{len(metadata.topics[name].partitions)}")


@dataset_app.command("accumulate")
def dataset_accumulate(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to catch up before giving up.")] = 3600.0,
) -> None:
    """Run the accumulator until it has read enriched and labels up to their end offsets at
    the start, write the last shard, commit and exit (prints the rows written). Exit code 4
    when the broker or the topics are missing, 70 when the stage failed."""
    from streams.artifacts import DatasetError
    from streams.clients import wait_for_broker
    from streams.exceptions import StreamError
    from training.accumulate.bounded import accumulate

    settings = _settings(ctx)
    try:
        wait_for_broker(settings, timeout=30)
        done = accumulate(settings, _stop_event(), timeout)
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    except StreamError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.STAGE_FAILED) from None
    typer.echo(f"wrote {done.rows_written} rows ({done.records} input records read to their end)")


@dataset_app.command("snapshot")
def dataset_snapshot(ctx: typer.Context) -> None:
    """Take a snapshot of every shard there is now (prints its id and counts as JSON)."""
    import json

    from streams.artifacts import DatasetError, dataset_store_for

    try:
        snap = dataset_store_for(_settings(ctx)).snapshot()
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    typer.echo(json.dumps(snap.describe()))


@dataset_app.command("list")
def dataset_list(ctx: typer.Context) -> None:
    """The dataset's snapshots, oldest first (id, shards, rows)."""
    from streams.artifacts import DatasetError, dataset_store_for

    try:
        store = dataset_store_for(_settings(ctx))
        for snapshot_id in store.snapshots():
            snap = store.get(snapshot_id)
            typer.echo(f"{snap.id}\t{len(snap.shards)} shards\t{snap.rows} rows")
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None


@app.command()
def produce(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic, e.g. caslie.catalog or catalog.")],
    file: Annotated[str, typer.Argument(help="JSON-lines file, or - for standard input.")] = "-",
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Send the valid lines even if some are invalid.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for delivery.")] = 30.0,
    key_delimiter: Annotated[
        str | None,
        typer.Option(
            "--key-delimiter",
            "-K",
            help="Lines are KEY<delimiter>VALUE (kcat's -K form; '\\t' for a tab): each key "
            "must equal the value's key field. An empty catalog value deletes the product.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate JSON lines against the topic's schema and produce them, keyed by the topic's
    key field (docs/events.md).

    Nothing is sent if any line is invalid, unless --skip-invalid. Exit code 1 on invalid
    lines (0 with --skip-invalid), 4 if the broker is unreachable.
    """
    from streams.produce import ProduceError, produce_lines

    delimiter = None
    if key_delimiter is not None:
        delimiter = key_delimiter.replace("\\t", "\t").encode()
        if not delimiter:
            typer.echo("error: --key-delimiter must not be empty", err=True)
            raise typer.Exit(ExitCode.USAGE)

    settings = _settings(ctx)
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    try:
        with stream:
            report = produce_lines(
                settings,
                topic,
                stream,
                skip_invalid=skip_invalid,
                timeout=timeout,
                key_delimiter=delimiter,
            )
    except (KeyError, ProduceError) as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(
            ExitCode.UNAVAILABLE if isinstance(exc, ProduceError) else ExitCode.INVALID_INPUT
        ) from None
    for line_no, reason in report.invalid:
        typer.echo(f"line {line_no}: {reason}", err=True)
    typer.echo(f"sent {report.sent}, invalid {len(report.invalid)}", err=True)
    if report.invalid and not skip_invalid:
        raise typer.Exit(ExitCode.INVALID_INPUT)


@app.command()
def consume(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic, e.g. caslie.predictions or predictions.")],
    max_records: Annotated[int | None, typer.Option("--max", help="Stop after N records.")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop after S seconds without a new record.")
    ] = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the earliest offset.")
    ] = False,
    dedupe: Annotated[
        bool, typer.Option("--dedupe", help="Drop repeats (same caslie-id header).")
    ] = False,
    json_envelope: Annotated[
        bool,
        typer.Option(
            "--json-envelope",
            help="One JSON object per record as kcat -J prints it: topic, partition, offset, "
            "tstype, ts, headers, key and payload (the value's JSON).",
        ),
    ] = False,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Read as a member of this consumer group and commit what was printed "
            "(default: every partition by direct assignment, nothing committed).",
        ),
    ] = None,
) -> None:
    """Print a topic's records as JSON lines: their values, or kcat-like envelopes.

    With --group the read resumes at the group's committed offsets (a new group starts at the
    end, or the beginning with --from-beginning). Exit code 5 when --max was given and fewer
    records arrived before --timeout.
    """
    import orjson

    from streams.consume import consume_messages, envelope

    settings = _settings(ctx)
    stop = _stop_event()
    count = 0
    try:
        for msg in consume_messages(
            settings,
            topic,
            max_records=max_records,
            idle_timeout=timeout,
            from_beginning=from_beginning,
            dedupe=dedupe,
            stop=stop,
            group=group,
        ):
            line = orjson.dumps(envelope(msg)) if json_envelope else msg.value() or b""
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.flush()
            count += 1
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    if max_records is not None and count < max_records:
        typer.echo(f"received {count} of {max_records} records", err=True)
        raise typer.Exit(ExitCode.INCOMPLETE)


@app.command()
def run(
    ctx: typer.Context,
    stage: Annotated[
        str, typer.Argument(help="router, captioner, voter, predictor, accumulator or all.")
    ],
    wait: WaitOption = BROKER_WAIT_S,
) -> None:
    """Run one stage as a long-lived worker (graceful stop on SIGTERM/Ctrl-C).

    Exit code 11 for an unknown stage, 8 when a stage's model backend is missing (vLLM, a
    GPU, Tesseract, a model folder: the message says how to get it), 9 when a stage's
    settings cannot work, 4 when the broker does not answer within --wait seconds (checked
    once the stages are built), 3 at a DLQ limit, 70 when a stage failed.
    """
    settings = _settings(ctx)
    from caslie.stages import BUILDERS, run_stages

    if stage != "all" and stage not in BUILDERS:
        _fail(ExitCode.UNKNOWN_STAGE, f"unknown stage {stage!r}; known: {', '.join(BUILDERS)}, all")

    raise typer.Exit(run_stages(settings, stage, _stop_event(), wait))


@app.command()
def demo(
    ctx: typer.Context,
    external: Annotated[
        bool,
        typer.Option("--external", help="Use the configured broker instead of the embedded one."),
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all predictions.")] = 900.0,
    kind: Annotated[
        str,
        typer.Option(
            "--broker", help="The local broker: auto, apache or tansu (see caslie broker)."
        ),
    ] = "auto",
    train: Annotated[
        bool,
        typer.Option(
            "--train",
            help="Then train a generalist adapter on a small synthetic shop (one retrain "
            "cycle, CPU settings) and ask the queries again: answers before and after.",
        ),
    ] = False,
    shop: Annotated[
        int, typer.Option(help="--train: synthetic shop queries per task.", min=8)
    ] = 16,
) -> None:
    """Run the whole pipeline on a built-in sample (all 7 tasks) and print the predictions.

    Starts a local broker (unless --external: Apache Kafka from the cached jars when Java is
    there, else tansu), creates topics, runs every stage, produces drawn product images,
    reviews and queries, and waits for every prediction. Exit code 0 only if every request
    was answered (5 otherwise); 2 for an unknown --broker, 4 when the broker cannot start;
    with --train also retrain's 6 and 7, and 5 when the new version answered not all.
    """
    from rich.console import Console

    from caslie.demo import run_demo
    from streams.exceptions import BrokerUnavailable
    from streams.local_broker import KINDS

    if kind not in KINDS:
        typer.echo(f"error: --broker must be one of {', '.join(KINDS)}, not {kind!r}", err=True)
        raise typer.Exit(ExitCode.USAGE)
    try:
        code = run_demo(
            _settings(ctx),
            external,
            json_path,
            timeout,
            Console(),
            broker_kind=kind,
            train_shop=shop if train else 0,
        )
    except BrokerUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.UNAVAILABLE) from None
    raise typer.Exit(code)


@app.command()
def bench(
    ctx: typer.Context,
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes: a few minutes on two CPU cores.")
    ] = False,
    json_path: Annotated[
        Path, typer.Option("--json", "--out", help="Where to write the JSON report.")
    ] = Path("bench.json"),
    markdown_path: Annotated[
        Path | None,
        typer.Option("--markdown", help="Markdown summary (default: the JSON path with .md)."),
    ] = None,
    external: Annotated[
        bool,
        typer.Option("--external", help="Use the configured broker instead of the embedded one."),
    ] = False,
    work_dir: Annotated[
        Path | None, typer.Option(help="Images, worker logs (default: a temporary folder).")
    ] = None,
    catalog_products: Annotated[
        int | None,
        typer.Option(
            help="Products of the catalog section (default 1,000,000; --quick 20,000; 0: skip).",
            min=0,
        ),
    ] = None,
    streaming_only: Annotated[
        bool,
        typer.Option(
            "--streaming-only",
            help="Only the streaming layer's sections (no models): the runner against the "
            "bare client, and the router's state at catalog scale.",
        ),
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="One section alone: 'voting' (the authors' CQE against batched scoring; "
            "captioner and voter only, no broker).",
        ),
    ] = None,
    gpu_suite: Annotated[
        bool,
        typer.Option(
            "--gpu-suite",
            help="The model sections on random-weight models of real shapes, on CUDA when "
            "torch sees it (no broker): CQE, predictor, VLM captioner, LoRA training.",
        ),
    ] = False,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="With --gpu-suite: tiny shapes (CPU, CI).")
    ] = False,
    compare: Annotated[
        Path | None,
        typer.Option(help="With --gpu-suite: a CPU run's JSON, for the GPU/CPU ratio table."),
    ] = None,
) -> None:
    """Measure what the Kafka pipeline costs next to calling the stages in-process, batched
    voting against the authors' one-at-a-time generation, batch sizes, the Kafka layer alone
    and peak memory, the runner against the bare client, and the router's state at catalog
    scale. Every comparison runs in this
    one invocation, on the same inputs.

    Exit code 0 when the report was written (goals met or not: see its "goals"), 4 when the
    broker or a worker could not be reached in time.
    """
    import dataclasses
    import tempfile

    import orjson
    from rich.console import Console

    from caslie.bench.report import markdown
    from caslie.bench.run import BenchPlan, run_bench, run_streaming_bench, run_voting_bench

    if gpu_suite:
        _gpu_suite(tiny, json_path, markdown_path, compare)
        return
    if tiny or compare:
        typer.echo("error: --tiny and --compare go with --gpu-suite", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT)
    if only not in (None, "voting") or (only and streaming_only):
        typer.echo("error: --only takes 'voting' (and not with --streaming-only)", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT)
    settings = _settings(ctx)
    plan = BenchPlan.quick() if quick else BenchPlan.full()
    if catalog_products is not None:
        plan = dataclasses.replace(plan, catalog_products=catalog_products)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="caslie-bench-") as tmp:
        try:
            run = (
                run_voting_bench
                if only == "voting"
                else run_streaming_bench
                if streaming_only
                else run_bench
            )
            report = run(settings, plan, external, work_dir or Path(tmp), console)
        except TimeoutError as exc:
            console.print(f"[red]bench: {exc}[/]")
            raise typer.Exit(ExitCode.UNAVAILABLE) from None
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    summary = markdown(report)
    (markdown_path or json_path.with_suffix(".md")).write_text(summary)
    console.print(summary)
    console.print(f"wrote {json_path}")


def _gpu_suite(
    tiny: bool, json_path: Path, markdown_path: Path | None, compare: Path | None
) -> None:
    import orjson
    from rich.console import Console

    from caslie.bench.gpu_report import markdown
    from caslie.bench.gpu_suite import run_suite

    try:
        cpu = orjson.loads(compare.read_bytes()) if compare else None
    except (OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"error: --compare {compare}: {exc}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    console = Console()
    command = f"caslie bench --gpu-suite{' --tiny' if tiny else ''} --out {json_path}"
    report = run_suite("tiny" if tiny else "full", log=console.print, command=command)
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    summary = markdown(report, cpu)
    (markdown_path or json_path.with_suffix(".md")).write_text(summary)
    console.print(summary)
    console.print(f"wrote {json_path}")


@app.command()
def status(
    ctx: typer.Context,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics",
            "-m",
            help="A worker's metrics URL (http://host:9464/metrics) for DLQ counts by stage "
            "and kind; repeat for each worker.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON snapshot.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
) -> None:
    """Per-stage consumer lag, throughput and DLQ counts, refreshed live (Ctrl-C to stop).

    Lag is each stage's consumer group's committed offsets against its input topics' high
    watermarks (on the embedded broker watermarks count batches: lag there is approximate).
    Exit code 4 when the broker or a --metrics URL cannot be reached, 2 for a --metrics
    value that is not an http(s) URL.
    """
    from dataclasses import asdict

    import orjson
    from rich.console import Console
    from rich.live import Live

    from caslie.status import Snapshot, snapshot, table, with_rates

    settings = _settings(ctx)
    urls = metrics or []
    if bad := [u for u in urls if not u.startswith(("http://", "https://"))]:
        _fail(ExitCode.USAGE, f"--metrics takes a worker's http(s) metrics URL, not {bad[0]!r}")
    _broker_or_fail(settings)

    def read(previous: Snapshot | None) -> Snapshot:
        try:
            return with_rates(snapshot(settings, urls), previous)
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
            _fail(ExitCode.UNAVAILABLE, f"a worker's metrics URL did not answer: {exc}")

    console = Console()
    if once or json_output:
        first = read(None)
        if not json_output:
            console.print(table(first, settings))
            return
        time.sleep(min(interval, 5.0))  # a second reading gives the rates
        snap = read(first)
        typer.echo(orjson.dumps(asdict(snap), option=orjson.OPT_INDENT_2).decode())
        return
    stop = _stop_event()
    previous: Snapshot | None = None
    with Live(console=console, auto_refresh=False) as live:
        while not stop.is_set():
            previous = read(previous)
            live.update(table(previous, settings), refresh=True)
            stop.wait(interval)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


@app.command()
def retrain(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Adapter name to train and publish.")] = "generalist",
    every: Annotated[
        str | None, typer.Option(help="Repeat every interval (30m, 6h, 1d) until stopped.")
    ] = None,
    margin: Annotated[float, typer.Option(help="Validation gain needed to publish.")] = 0.01,
    max_train: Annotated[int | None, typer.Option(help="Use at most N training examples.")] = None,
    learning_rate: Annotated[float, typer.Option("--lr")] = 1e-4,
    epochs: Annotated[float, typer.Option()] = 3.0,
    effective_batch: Annotated[int, typer.Option()] = 128,
    micro_batch: Annotated[int, typer.Option()] = 4,
    rank: Annotated[int, typer.Option("--r")] = 16,
    alpha: Annotated[int, typer.Option()] = 16,
    lm_head: Annotated[
        bool | None,
        typer.Option(
            "--lm-head/--no-lm-head",
            help="Also adapt lm_head (the paper does). Default: yes with predictor.backend "
            "'transformers', no with 'vllm' (where --lm-head is refused: docs/training.md).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and example order.")] = 0,
    target: Annotated[
        str,
        typer.Option(
            help="What the loss learns: output, the whole gold output (the paper's); label, "
            "the answer's label alone (the option letter, yes/no, a JSON task's object)."
        ),
    ] = "output",
    stage: Annotated[
        str,
        typer.Option(
            help="sft: train a LoRA adapter; both: SFT, then DPO on its failed listing drafts, "
            "the better on validation faces the incumbent; dpo: DPO from the published version."
        ),
    ] = "sft",
    beta: Annotated[float, typer.Option(help="DPO temperature (sigmoid loss).")] = 0.1,
    dpo_steps: Annotated[
        int, typer.Option(help="DPO optimizer steps (0: one epoch over the pairs, the paper's).")
    ] = 8,
    dpo_subset: Annotated[
        int, typer.Option(help="Training listings drafted and graded for DPO.")
    ] = 64,
    dpo_lr: Annotated[float, typer.Option("--dpo-lr")] = 5e-6,
    refine: Annotated[
        bool,
        typer.Option(
            "--refine/--no-refine",
            help="Cut the training split's listing (LG) references to what each example's "
            "photos show (OCR tokens, kept captions) first; validation keeps its own.",
        ),
    ] = False,
    snapshot: Annotated[
        str,
        typer.Option(
            help="The dataset snapshot to train on: new (taken now), latest, or an id "
            "(caslie dataset list). A killed run's restart keeps its own."
        ),
    ] = "new",
    summary: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the cycle's summary here (the registry keeps it)."),
    ] = None,
) -> None:
    """One retraining cycle: take a snapshot of the accumulated dataset (caslie dataset), train
    a LoRA adapter (and, by --stage, tune it by DPO), evaluate against the incumbent on
    validation, publish only if the gate passes, and announce it to the predictors. LoRA
    defaults are the paper's hyper-parameters, lm_head only where predictor.backend serves it
    (not on vllm); DPO defaults are sized for a CPU. Checkpoints go to training.checkpoint_dir:
    a killed run started again resumes there. The summary goes to the registry
    (<name>/runs/, and <name>/v<N>/summary.json when published).

    Exit codes: 0 published; 6 the gate kept the incumbent (success for a scheduler); 7 no
    dataset, unknown snapshot or too little labelled data; 2 --lm-head with predictor.backend
    'vllm' or an unknown --stage; 4 the broker or a model backend is unavailable; 70 the run
    failed. With --every the loop never ends on a failed cycle: it logs it and tries again
    after a backoff (30 s, doubling, at most the interval).
    """
    from training.dpo import DpoSettings
    from training.lora import LoraSettings, target_modules
    from training.retrain import parse_stage

    def parse_target(value: str) -> Literal["output", "label"]:
        if value == "output":
            return "output"
        if value == "label":
            return "label"
        raise typer.BadParameter(
            f"target must be output or label, not {value!r}", param_hint="'--target'"
        )

    settings = _settings(ctx)
    try:
        chosen_stage = parse_stage(stage)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--stage'") from None
    try:
        targets = target_modules(settings.predictor.backend, lm_head)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--lm-head'") from None
    try:
        interval = None if every is None else _duration(every)
    except ValueError:
        raise typer.BadParameter(
            f"{every!r} is not a duration (30m, 6h, 1d or seconds)", param_hint="'--every'"
        ) from None
    lora = LoraSettings(
        learning_rate=learning_rate,
        epochs=epochs,
        effective_batch=effective_batch,
        micro_batch=micro_batch,
        r=rank,
        alpha=alpha,
        target_modules=targets,
        seed=seed,
        target=parse_target(target),
    )
    dpo = DpoSettings(
        beta=beta, learning_rate=dpo_lr, max_steps=dpo_steps, subset=dpo_subset, seed=seed
    )

    def cycle() -> ExitCode:
        return _retrain_once(
            settings, name, lora, margin, max_train, chosen_stage, dpo, refine, snapshot, summary
        )

    if interval is None:
        raise typer.Exit(cycle())
    stop = _stop_event()
    backoff = RETRAIN_BACKOFF_S
    while not stop.is_set():
        try:
            code = cycle()
        except Exception:  # cycle() maps its own; this keeps the loop alive whatever escapes
            log.exception("the retraining cycle failed")
            code = ExitCode.STAGE_FAILED
        wait = (
            interval if code in (ExitCode.OK, ExitCode.KEPT_INCUMBENT) else min(backoff, interval)
        )
        backoff = RETRAIN_BACKOFF_S if wait == interval else backoff * 2
        if wait != interval:
            log.warning("retrain: cycle ended with exit code %d; next try in %.0f s", code, wait)
        if stop.wait(wait):
            return


#: ``retrain --every``: the first wait after a failed cycle (it doubles up to the interval).
RETRAIN_BACKOFF_S = 30.0


def _retrain_once(
    settings: Settings,
    name: str,
    lora: LoraSettings,
    margin: float,
    max_train: int | None,
    stage: Stage,
    dpo: DpoSettings,
    refine: bool,
    snapshot: str,
    summary: Path | None,
) -> ExitCode:
    """One cycle and its exit code (``caslie retrain``'s docstring); a failure the user can
    act on is one line on stderr, not a traceback."""
    from confluent_kafka import KafkaException

    from streams.artifacts import DatasetError
    from training.retrain import (
        AnnouncementError,
        TrainingDataError,
        cycle_summary,
        retrain_cycle,
    )
    from workers.backends.base import BackendUnavailable

    try:
        result = retrain_cycle(
            settings,
            name,
            lora,
            margin,
            max_train,
            stage=stage,
            dpo=dpo,
            refine=refine,
            snapshot=snapshot,
        )
    except (DatasetError, TrainingDataError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return ExitCode.NO_TRAINING_DATA
    except (BackendUnavailable, KafkaException, AnnouncementError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return ExitCode.UNAVAILABLE
    except Exception:
        log.exception("the retraining cycle failed")
        return ExitCode.STAGE_FAILED
    text = cycle_summary(result)
    typer.echo(text.decode())
    if summary is not None:
        summary.write_bytes(text)
    return ExitCode.OK if result.published else ExitCode.KEPT_INCUMBENT


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(help="MMECInstruct-style JSON (default: labelled data from the topics)."),
    ] = None,
    records: Annotated[
        Path | None,
        typer.Option(
            help="A caslie prepare output folder (enriched.jsonl, labels.jsonl) instead of "
            "the topics."
        ),
    ] = None,
    snapshot: Annotated[
        str | None,
        typer.Option(
            help="A snapshot of the accumulated dataset (an id or latest: caslie dataset "
            "list) instead of the topics: the data retrain trained on, its other splits."
        ),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            help="Split to evaluate, scored apart (repeatable): test, test-<tag>, ood-<tag>, "
            "val, train. Default: test."
        ),
    ] = None,
    captions: Annotated[
        str,
        typer.Option(
            help="Captions in the prompts: mv (the CQE decisions recorded), uia (every "
            "caption), none (text only, the uniM3 baseline). Needs records, not --data."
        ),
    ] = "mv",
    decoding: Annotated[
        str | None,
        typer.Option(help="score or generate (default: predictor.decoding)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Adapter name: evaluates base and every version (default generalist; "
            "without versions, the base alone).",
            show_default=False,
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Plot per-task strict metrics across versions (PNG; one per split, "
            "named <stem>-<split> when there are several)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate at most N examples a split.")] = None,
    task: Annotated[
        list[str] | None, typer.Option(help="Evaluate only this task (repeatable).")
    ] = None,
    vlm: Annotated[
        str | None,
        typer.Option(
            help="Also answer the option tasks by VIT-Pro's direct path with this VLM folder "
            "(rows 'direct:...'), beside the caption path."
        ),
    ] = None,
) -> None:
    """Evaluate the base model and every registry version of an adapter with the paper's
    metrics: paper-compatible (parse failures excluded), strict (failures wrong), failures;
    each split apart (in-domain ``test`` beside out-of-domain tags). Answers are produced as
    the predictor serves them: ``predictor.decoding`` (or --decoding), ``prompt_format``,
    ``cutoff``; JSON tasks (AE) as ``predictor.json_decoding`` says. The JSON output records
    all of it, with per-attribute scores (AE) and a listing task's other metrics and
    per-category scores; the table shows the other metrics (strict) under the task's row.

    Exit code 2 for contradictory options (--data, --records, --snapshot; --captions other than mv
    on a file's claim tasks), 1 when a split has no labelled examples or a file is missing,
    12 when --name has no version in the registry (or the registry cannot be read), 4 when the
    topics are read and the broker does not answer."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from schemas.records import EnrichedRecord, LabelEvent, is_split_tag
    from streams.artifacts import registry_for
    from training.dataset import CAPTIONS, Captions, assemble, read_mmec
    from training.evaluate import answerers, evaluate, majority_baseline
    from training.metrics import TaskScore
    from training.plot import plot_versions

    splits = split or ["test"]
    problems = [f"--split {s!r} is not a split tag" for s in splits if not is_split_tag(s)]
    if captions not in CAPTIONS:
        problems.append(f"--captions must be one of {', '.join(CAPTIONS)}, not {captions!r}")
    if decoding not in (None, "score", "generate"):
        problems.append(f"--decoding must be score or generate, not {decoding!r}")
    if sum(x is not None for x in (data, records, snapshot)) > 1:
        problems.append("--data, --records and --snapshot exclude each other")
    if problems:
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(ExitCode.USAGE)
    settings = _settings(ctx)
    registry = registry_for(settings)
    adapter = name or "generalist"
    try:
        adapter_versions = registry.versions(adapter)
    except Exception as exc:  # a folder or an S3 store: its errors vary
        _fail(ExitCode.UNKNOWN_ADAPTER, f"cannot read the adapter registry: {exc}")
    if name is not None and not adapter_versions:
        _fail(ExitCode.UNKNOWN_ADAPTER, _no_adapter(settings, name))
    if data is not None:
        try:
            examples = [e.with_caption_mode(cast(Captions, captions)) for e in read_mmec(data)]
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(ExitCode.USAGE) from None
        except OSError as exc:
            _fail(ExitCode.INVALID_INPUT, f"cannot read {data}: {exc.strerror}")
    else:
        if snapshot is not None:
            from streams.artifacts import DatasetError, dataset_store_for
            from streams.artifacts.datasets import records_and_labels

            store = dataset_store_for(settings)
            try:
                enriched, labels = records_and_labels(store.read(store.get(snapshot)))
            except DatasetError as exc:
                _fail(ExitCode.NO_TRAINING_DATA, str(exc))
        elif records is not None:
            from caslie.prepare import read_prepared

            try:
                enriched, labels = read_prepared(records)
            except FileNotFoundError as exc:
                typer.echo(f"error: {exc.filename} not found (caslie prepare writes it)", err=True)
                raise typer.Exit(ExitCode.INVALID_INPUT) from None
        else:
            from training.retrain import read_topic_records

            _broker_or_fail(settings)
            enriched = [
                EnrichedRecord.from_json(v) for v in read_topic_records(settings, "enriched")
            ]
            labels = [LabelEvent.from_json(v) for v in read_topic_records(settings, "labels")]
        examples = assemble(enriched, labels, cast(Captions, captions))  # checked above
    by_split = {
        s: [e for e in examples if e.split == s and (not task or e.task in task)][:limit]
        for s in dict.fromkeys(splits)
    }
    if empty := [s for s, items in by_split.items() if not items]:
        typer.echo(f"error: no labelled examples in split(s) {', '.join(empty)}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT)
    models = answerers(settings, decoding)
    scorer, extractor = models.scorer, models.extractor
    versions: list[str | None] = [None]
    for version in adapter_versions:
        entry = registry.get(adapter, version)
        models.lm.load_adapter(
            entry.ref, registry.download(adapter, version, settings.cache_dir / "adapter-cache")
        )
        versions.append(entry.ref)
    answerer = None
    if vlm is not None:
        from workers.backends.vlm_answer import TransformersVlmAnswerer

        answerer = TransformersVlmAnswerer(vlm, settings.predictor.vlm_max_side)
    described = {**models.describe(), "captions": captions}
    title = ", ".join(f"{len(items)} {s}" for s, items in by_split.items())
    table = Table(title=f"{title} examples ({', '.join(f'{k} {v}' for k, v in described.items())})")
    for column in ("split", "model", "task", "metric", "paper", "strict", "failures", "n"):
        table.add_column(column)
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for name_of_split, items in by_split.items():
        runs: list[tuple[str, dict[str, TaskScore]]] = [
            (ref or "base", evaluate(scorer, items, adapter=ref, extractor=extractor))
            for ref in versions
        ]
        if answerer is not None:
            direct = evaluate(scorer, items, direct=answerer, images=settings.images)
            runs.append((f"direct:{answerer.name}", direct))
        runs.append(("majority", majority_baseline(items)))
        results[name_of_split] = {
            label: {t: s.__dict__ for t, s in scores.items()} for label, scores in runs
        }
        for label, scores in runs:
            for code, s in scores.items():
                table.add_row(
                    name_of_split,
                    label,
                    code,
                    s.metric,
                    f"{s.paper:.3f}",
                    f"{s.strict:.3f}",
                    str(s.failures),
                    str(s.n),
                )
                for metric, value in (s.extra or {}).items():
                    row = (name_of_split, label, code, metric, "", f"{value:.3f}")
                    table.add_row(*row, str(s.failures), str(s.n))
    Console().print(table)
    if json_path is not None:
        report = {"evaluation": described, "splits": results}
        try:
            json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            _fail(ExitCode.OUTPUT_UNWRITABLE, f"cannot write {json_path}: {exc.strerror}")
    if plot is not None:
        for name_of_split, per_model in results.items():
            strict = {
                v: {t: float(s["strict"]) for t, s in r.items()} for v, r in per_model.items()
            }
            target = plot if len(results) == 1 else plot.with_stem(f"{plot.stem}-{name_of_split}")
            plot_versions(strict, target)


@app.command()
def prepare(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Argument(help="Folder of labelled events (python -m training.synthetic).")
    ],
    out: Annotated[Path, typer.Argument(help="Folder for enriched.jsonl and labels.jsonl.")],
    judges: Annotated[
        str | None, typer.Option(help="CQE judges, comma-separated (default: voter.judges).")
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(help="Share of non-test ids for val (a set that pins val keeps its own)."),
    ] = 0.1,
) -> None:
    """Labelled events (claims: catalog, claims, queries, labels, splits; listings under
    listings/: aspect schemas, listings, queries, labels, splits; a shop under shop/:
    catalog, reviews, queries, labels, splits) -> enriched records and
    split-pinned labels, through the captioner and voter stages without a broker; produce
    them with ``caslie produce`` for ``caslie retrain``."""
    from caslie.prepare import prepare as run_prepare

    settings = _settings(ctx)
    if judges:
        voter = settings.voter.model_copy(update={"judges": judges.split(",")})
        settings = settings.model_copy(update={"voter": voter})
    try:
        records, labels = run_prepare(source, out, settings, val_fraction)
    except FileNotFoundError as exc:
        typer.echo(
            f"error: {exc.filename} not found (write it with python -m training.synthetic)",
            err=True,
        )
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    except OSError as exc:  # a missing input is the FileNotFoundError above
        _fail(ExitCode.OUTPUT_UNWRITABLE, f"cannot write {exc.filename or out}: {exc.strerror}")
    typer.echo(f"wrote {records} enriched records and {labels} labels to {out}")


@app.command()
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Adapter name.")] = "generalist",
) -> None:
    """Make the previous adapter version current again and announce it to the predictors.

    Exit code 12 when the registry holds no version of NAME, 13 when there is no version
    before the current one, 4 when the broker does not answer (nothing is changed then)."""
    from streams.artifacts import registry_for
    from streams.artifacts.registry import RegistryError
    from training.retrain import AnnouncementError
    from training.retrain import rollback as do_rollback

    settings = _settings(ctx)
    registry = registry_for(settings)
    try:
        known, previous = registry.versions(name), registry.previous(name)
    except Exception as exc:  # a folder or an S3 store: its errors vary
        _fail(ExitCode.UNKNOWN_ADAPTER, f"cannot read the adapter registry: {exc}")
    if not known:
        _fail(ExitCode.UNKNOWN_ADAPTER, _no_adapter(settings, name))
    if previous is None:
        current = registry.current(name)
        _fail(ExitCode.NOTHING_TO_ROLL_BACK, f"{name} has no version before v{current}")
    _broker_or_fail(settings)  # before anything changes
    try:
        entry = do_rollback(settings, name)
    except RegistryError as exc:
        _fail(ExitCode.NOTHING_TO_ROLL_BACK, str(exc))
    except AnnouncementError as exc:
        _fail(ExitCode.UNAVAILABLE, str(exc))
    typer.echo(f"now serving {entry.ref}")


def _no_adapter(settings: Settings, name: str) -> str:
    location = settings.predictor.registry or str(settings.cache_dir / "adapters")
    return (
        f"the adapter registry at {location} has no version of {name!r} "
        "(caslie retrain publishes one; predictor.registry says where the registry is)"
    )


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[
        Path | None, typer.Argument(help="Target folder (default: the package's).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the files differ from the models.")
    ] = False,
) -> None:
    """Write the JSON Schema file of every topic (or check them with --check)."""
    from schemas.registry import JSONSCHEMA_DIR, render_json_schemas, write_json_schemas

    target = directory or JSONSCHEMA_DIR
    if check:
        stale = [
            n
            for n, text in render_json_schemas().items()
            if not (target / n).is_file() or (target / n).read_text() != text
        ]
        for name in stale:
            typer.echo(f"stale: {target / name}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT if stale else ExitCode.OK)
    try:
        written = write_json_schemas(target)
    except OSError as exc:
        _fail(ExitCode.OUTPUT_UNWRITABLE, f"cannot write {exc.filename or target}: {exc.strerror}")
    for path in written:
        typer.echo(str(path))


def _since(text: str | None) -> float | None:
    """``--since``: seconds since the epoch, or an ISO 8601 time (UTC unless it says)."""
    if text is None:
        return None
    from datetime import UTC, datetime

    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither seconds since the epoch nor an ISO 8601 time",
            param_hint="--since",
        ) from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    request_id: Annotated[
        list[str] | None,
        typer.Option("--request-id", help="Envelopes of this request (repeatable)."),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Error kind, e.g. processing (repeatable).")
    ] = None,
    stage: Annotated[
        list[str] | None, typer.Option("--stage", help="Stage that gave up (repeatable).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Failed at or after: epoch seconds or ISO 8601 (e.g. 2026-12-01T18:00)."),
    ] = None,
    max_records: Annotated[
        int | None, typer.Option("--max", min=1, help="Replay at most N envelopes.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be replayed; produce nothing.")
    ] = False,
) -> None:
    """Re-drive dead-lettered records to their source topic with their original key.

    Reads the DLQ once to its end; every filter given must match. Exit code 1 when a chosen
    envelope cannot be replayed (its payload was truncated): nothing is produced then.
    """
    from confluent_kafka import KafkaException

    from schemas.dlq import ErrorKind
    from streams.exceptions import StreamError
    from streams.replay import NotReplayable, Selection, check_replayable, read_envelopes, select
    from streams.replay import replay as do_replay

    unknown = sorted(set(kind or ()) - {k.value for k in ErrorKind})
    if unknown:
        raise typer.BadParameter(
            f"unknown error kind(s) {', '.join(unknown)}; known: {', '.join(ErrorKind)}",
            param_hint="--kind",
        )
    settings = _settings(ctx)
    selection = Selection(
        request_ids=frozenset(request_id or ()),
        kinds=frozenset(kind or ()),
        stages=frozenset(stage or ()),
        since=_since(since),
        max_records=max_records,
    )
    try:
        chosen = select(read_envelopes(settings), selection)
        if dry_run:
            check_replayable(settings, chosen)
            for e in chosen:
                typer.echo(
                    f"{e.topic} key={e.key} request_id={e.request_id} {e.stage} "
                    f"{e.error_kind.value}: {e.message[:120]}"
                )
            typer.echo(f"would replay {len(chosen)} envelope(s)")
            return
        typer.echo(f"replayed {do_replay(settings, chosen)} envelope(s)")
    except (NotReplayable, KeyError) as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(ExitCode.INVALID_INPUT) from None
    except (StreamError, KafkaException) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.UNAVAILABLE) from None


def main() -> None:
    app()
