"""``caslie demo``: the whole pipeline on a local broker (Apache Kafka from the cached jars,
else tansu) or an external one, with the built-in sample, a live progress bar, a readable
table and optional JSON; with ``--train`` it then trains an adapter and asks again
(:mod:`caslie.demo_train`).

The table shows a JSON answer (AE's attributes, LG's listing draft) as one ``key: value`` line
per field, an object's fields indented under its key."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from caslie import demo_train
from caslie.demo_data import build_sample
from caslie.exit_codes import ExitCode
from caslie.stages import run_stages
from schemas.events import ClaimEvent, ListingEvent, Query
from schemas.tasks.registry import get_task
from streams.clients import create_topics, make_producer, wait_for_broker
from streams.config import Settings
from streams.consume import consume_records
from streams.local_broker import BrokerKind, describe, start_local_broker
from streams.logs import configure_logging
from streams.produce import produce_event


def _produce(settings: Settings, events: dict[str, list[dict[str, Any]]]) -> None:
    producer = make_producer(settings)
    for logical in ("catalog", "reviews", "aspect_schemas", "listings", "claims", "queries"):
        for event in events[logical]:
            produce_event(producer, settings, logical, event)
        producer.flush(30)


def _auto_queries(settings: Settings, events: dict[str, list[dict[str, Any]]]) -> list[Query]:
    """The queries the router asks by itself: its claim tasks of each claim, its listing
    tasks of each listing."""
    queries: list[Query | None] = []
    for claim in events["claims"]:
        for task in settings.router.claim_tasks:
            queries.append(get_task(task).for_claim(ClaimEvent.model_validate(claim)))
    for listing in events["listings"]:
        for task in settings.router.listing_tasks:
            queries.append(get_task(task).for_listing(ListingEvent.model_validate(listing)))
    return [q for q in queries if q is not None]


def _brief(query: dict[str, Any], listings: dict[str, dict[str, Any]]) -> str:
    """The query's inputs on one line; a listing's category and seller text for its id."""
    skip = {"request_id", "task", "options"}
    fields = {k: v for k, v in query.items() if k not in skip}
    listing = listings.get(fields.get("listing_id", ""))
    if listing is not None:
        fields = {"category": listing["category"], "seller_text": listing.get("seller_text")}
    return "; ".join(f"{k}={v}" for k, v in fields.items())[:70]


def readable_answer(label: str) -> str:
    """A JSON object answer as ``key: value`` lines (nested objects indented under their
    key); any other label as it is."""
    try:
        obj = orjson.loads(label)
    except orjson.JSONDecodeError:
        return label
    if not isinstance(obj, dict):
        return label

    def lines(fields: dict[str, Any], indent: str) -> list[str]:
        out = []
        for key, value in fields.items():
            if isinstance(value, dict):
                out += [f"{indent}{key}:", *lines(value, indent + "  ")]
            else:
                out.append(f"{indent}{key}: {value}")
        return out

    return "\n".join(lines(obj, ""))


def run_demo(
    settings: Settings,
    external: bool,
    json_path: Path | None,
    timeout: float,
    console: Console,
    broker_kind: BrokerKind = "auto",
    train_shop: int = 0,
) -> int:
    """The demo (module doc) on a local broker (``broker_kind``: see
    :func:`~streams.local_broker.start_local_broker`) or, ``external``, the configured one.
    ``train_shop`` > 0: then train an adapter on a synthetic shop of that many queries per
    task and ask the sample's queries again (:mod:`caslie.demo_train`). Returns the exit
    code."""
    if "log_level" not in settings.model_fields_set:
        # the demo's own output is the table; worker and librdkafka chatter only when asked for
        settings = settings.model_copy(
            update={"log_level": "WARNING", "kafka": {"log_level": "2", **settings.kafka}}
        )
        configure_logging("WARNING", settings.log_format)
    run_id = uuid.uuid4().hex[:8]
    if train_shop:
        settings = demo_train.fresh_registry(settings, run_id)
    broker = None
    if not external:
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        broker, fallback = start_local_broker(
            broker_kind, log_file=settings.cache_dir / "demo-broker.log"
        )
        settings = settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        console.print(describe(broker, fallback), soft_wrap=True, markup=False)
    stop = threading.Event()
    worker: threading.Thread | None = None
    code: list[int] = []
    started = time.monotonic()
    try:
        wait_for_broker(settings, timeout=30)
        create_topics(settings)
        folder = settings.cache_dir / "demo-images"
        events = build_sample(folder, run_id)
        # the sample's images are files: file:// is off unless its folder is a root
        settings = settings.with_file_root(folder)
        wanted = {q["request_id"]: q for q in events["queries"]}
        for query in _auto_queries(settings, events):
            wanted[query.request_id] = query.model_dump(mode="json", exclude_none=True)
        worker = threading.Thread(
            target=lambda: code.append(run_stages(settings, "all", stop)),
            name="stages",
            daemon=True,
        )
        worker.start()
        _produce(settings, events)
        console.print(
            f"produced {len(events['catalog'])} products, {len(events['reviews'])} reviews, "
            f"{len(events['claims'])} claim, {len(events['listings'])} listing, "
            f"{len(events['queries'])} queries (CASLIE's 7 tasks, "
            f"{', '.join(settings.router.claim_tasks)} of the claim and "
            f"{', '.join(settings.router.listing_tasks)} of the listing); loading models and "
            "waiting for predictions"
        )
        predictions = await_predictions(settings, set(wanted), timeout, console, code)
        enriched = {}
        for raw in consume_records(settings, "enriched", from_beginning=True, idle_timeout=2):
            record = orjson.loads(raw)
            if record.get("request_id") in wanted:
                enriched[record["request_id"]] = record
        listings = {listing["listing_id"]: listing for listing in events["listings"]}
        rows = _table(console, wanted, predictions, enriched, listings)
        if json_path is not None:
            json_path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
            console.print(f"wrote {json_path}")
        elapsed = time.monotonic() - started
        missing = sorted(set(wanted) - set(predictions))
        if missing:
            console.print(f"[red]no prediction for {missing} after {elapsed:.0f}s[/]")
            return code[0] if code and code[0] else ExitCode.INCOMPLETE
        failed = sorted(rid for rid, p in predictions.items() if p.get("status") == "failed")
        if failed:
            console.print(f"[red]{len(failed)} requests failed: {failed}[/]")
            return ExitCode.INCOMPLETE
        console.print(f"[green]all {len(wanted)} requests answered in {elapsed:.0f}s[/]")
        if not train_shop:
            return ExitCode.OK

        def ask(queries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            producer = make_producer(settings)
            for query in queries:
                produce_event(producer, settings, "queries", query)
            producer.flush(30)
            return await_predictions(
                settings, {q["request_id"] for q in queries}, timeout, console, code
            )

        return demo_train.train_and_ask_again(
            settings, events["queries"], predictions, train_shop, ask, console
        )
    finally:
        stop.set()
        if worker is not None:
            worker.join(120)
        gc.collect()  # destroy the stopped stages' Kafka clients before their broker goes
        if broker is not None:
            broker.stop()


def await_predictions(
    settings: Settings,
    wanted: set[str],
    timeout: float,
    console: Console,
    code: list[int],
) -> dict[str, dict[str, Any]]:
    """Request id -> its prediction, for the ``wanted`` ids answered within ``timeout``
    seconds (or until the stages ended: ``code`` holds their exit code), with a live
    progress bar. The reader is closed before this returns."""
    predictions: dict[str, dict[str, Any]] = {}
    done = threading.Event()
    with Progress(
        TextColumn("predictions"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("wait", total=len(wanted))

        def watch() -> None:
            for raw in consume_records(
                settings, "predictions", from_beginning=True, stop=done, idle_timeout=None
            ):
                record = orjson.loads(raw)
                rid = record.get("request_id")
                if rid in wanted and rid not in predictions:
                    predictions[rid] = record
                    progress.update(bar, completed=len(predictions))
                if len(predictions) == len(wanted):
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        deadline = time.monotonic() + timeout
        while watcher.is_alive() and time.monotonic() < deadline and not code:
            watcher.join(0.5)
        done.set()
        watcher.join(30)
    return dict(predictions)


def _answer(pred: dict[str, Any] | None) -> str:
    """A prediction's answer and the adapter that made it, or a failure's reason."""
    if pred is None:
        return "(none)"
    if pred.get("status") == "failed":
        return escape(f"failed ({pred.get('error_kind')}): {pred.get('reason')}")
    # escaped: rich would read "[base]" as a style tag and drop it
    return escape(f"{pred.get('option') or readable_answer(pred['label'])}  [{pred['adapter']}]")


def _table(
    console: Console,
    wanted: dict[str, dict[str, Any]],
    predictions: dict[str, dict[str, Any]],
    enriched: dict[str, dict[str, Any]],
    listings: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    table = Table(title="caslie demo: predictions", show_lines=True)
    for column in ("task", "inputs", "caption", "votes / kept", "prediction"):
        table.add_column(column, overflow="fold")
    rows = []
    for rid, query in wanted.items():
        pred = predictions.get(rid)
        record = enriched.get(rid, {})
        captions = [
            f"{c['slot']}: {c.get('text') or '(' + c.get('error', 'none') + ')'}"
            for c in record.get("captions", [])
        ]
        votes = [
            f"{v['slot']}: "
            + " ".join(
                f"{x['judge'].split(':')[-1]}={'y' if x['vote'] else 'n'}"
                for x in v.get("votes", [])
            )
            + f" -> {'kept' if v['keep'] else 'dropped'}"
            for v in record.get("verdicts", [])
        ]
        answer = _answer(pred)
        tokens = [
            f"{c['slot']} OCR: {c['ocr_tokens']}"
            for c in record.get("captions", [])
            if c.get("ocr_tokens")
        ]
        table.add_row(
            query["task"],
            _brief(query, listings),
            "\n".join(captions + tokens) or "-",
            "\n".join(votes) or "-",
            answer,
        )
        rows.append(
            {
                "query": query,
                "prediction": pred,
                "captions": record.get("captions", []),
                "verdicts": record.get("verdicts", []),
            }
        )
    console.print(table)
    return rows
