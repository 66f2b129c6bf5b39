"""The markdown summary of a benchmark report."""

from __future__ import annotations

from typing import Any

from caslie.bench import catalog, ceiling


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    if report.get("only") == "voting":
        return "\n".join(
            [
                f"# caslie bench: voting ({report['started_at']})",
                "",
                f"Judges {report['models']['judges']}, captioner "
                f"{report['models']['captioner']}. Wall {report['wall_s']:.0f} s.",
                "",
                *_voting(report["voting"]),
            ]
        )
    if "pipeline" not in report:  # the streaming sections alone
        return "\n".join(
            [f"# caslie bench: streaming layer ({report['started_at']})", "", *_streaming(report)]
        )
    m = report["machine"]
    inproc, pipe = report["in_process"], report["pipeline"]
    load = pipe["fixed_load"]
    lines = [
        f"# caslie bench ({report['started_at']})",
        "",
        f"Machine: {m['cpus']} CPUs, {m.get('memory_kb', 0) / 2**20:.0f} GiB, "
        f"{m['platform']}, Python {m['python']}, torch {m['torch']} ({m['torch_threads']} "
        f"threads), GPU: {m['gpu'] or 'none'}. Broker: {report['broker']}. Models: "
        f"captioner {report['models']['captioner']}, judges {report['models']['judges']}, "
        f"predictor {report['models']['predictor']}. Wall {report['wall_s']:.0f} s.",
        "",
        "## Pipeline overhead (same requests, all 7 tasks)",
        "",
        "| | requests | seconds | requests/s | captioner busy s | voter busy s "
        "| predictor busy s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, run in (("in-process", inproc), ("Kafka pipeline", pipe)):
        busy = run["busy_s"]
        lines.append(
            f"| {label} | {run['requests']} | {_f(run['seconds'], 1)} | "
            f"{_f(run['throughput_rps'], 3)} | {_f(busy['captioner'], 1)} | "
            f"{_f(busy['voter'], 1)} | {_f(busy['predictor'], 1)} |"
        )
    ratio = report["ratios"]["pipeline_vs_in_process_throughput"]
    goal = report["goals"]["pipeline_throughput_share"]
    lat = load["latency_s"]
    lines += [
        "",
        f"Throughput ratio pipeline / in-process: **{ratio:.2f}** (goal >= {goal['goal']}: "
        f"{'met' if goal['met'] else 'missed'}).",
        "",
        f"Latency at a fixed offered load of {load['offered_rps']:.3f} requests/s "
        f"({load['requests']} requests): p50 {_f(lat['p50'])} s, p95 {_f(lat['p95'])} s, "
        f"p99 {_f(lat['p99'])} s. Mean batch sizes: "
        + ", ".join(f"{s} {v:.1f}" for s, v in load["mean_batch_size"].items())
        + ".",
        "",
        "## Batched voting versus the authors' way",
        "",
    ]
    lines += _voting(report["voting"])
    lines += ["", "## Batch size", ""]
    for stage in ("captioner", "predictor"):
        sweep = report["batching"][stage]
        cells = ", ".join(
            f"{r['batch_size']}: {r['records_per_s']:.2f}/s ({r['speedup_vs_smallest']:.2f}x)"
            for r in sweep["rows"]
        )
        lines.append(f"- {stage}: {cells}; flattens at {sweep['flattens_at']}.")
    lines += [
        "",
        "## Kafka layer alone (produce + decode/validate + consume, no model)",
        "",
        "| topic | record bytes | records | produce/s | end-to-end records/s | MB/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["kafka_layer"]:
        lines.append(
            f"| {row['topic']} | {row['record_bytes']} | {row['records']} | "
            f"{row['produce_records_per_s']:.0f} | {row['end_to_end_records_per_s']:.0f} | "
            f"{row['end_to_end_mb_per_s']:.2f} |"
        )
    lines += ["", "## Peak resident memory (MB)", ""]
    mem = report["memory_peak_rss_mb"]
    lines.append(
        ", ".join(f"{s} {v:.0f}" for s, v in mem.items())
        + f"; all three stages in one process {inproc['bench_process_peak_rss_mb']:.0f}."
    )
    lines += ["", *_streaming(report)]
    lines += ["", "## GPU", "", report["gpu"].get("skipped") or f"Device: {report['gpu']}", ""]
    return "\n".join(lines)


def _voting(v: dict[str, Any]) -> list[str]:
    if "skipped" in v:
        return [f"Skipped: {v['skipped']}."]
    ties = v["batched_ties"]
    return [
        "| captions | authors s/caption | batched s/caption | speedup | decision agreement "
        "| LLM vote agreement | authors' parse failures |",
        "|---|---|---|---|---|---|---|",
        f"| {v['captions']} | {_f(v['authors_s_per_caption'], 3)} | "
        f"{_f(v['batched_s_per_caption'], 3)} | {_f(v['speedup'], 1)}x | "
        f"{_f(v['decision_agreement'], 3)} | {_f(v['llm_vote_agreement'], 3)} | "
        f"{v['authors_parse_failures']} of {v['authors_answers']} |",
        "",
        "Where the time goes (seconds per judge over all captions): batched "
        + ", ".join(f"{k} {t:.1f}" for k, t in v["batched_judge_s"].items())
        + "; authors' way "
        + ", ".join(f"{k} {t:.1f}" for k, t in v["authors_judge_s"].items())
        + ". LLM vote agreement where the authors' answer parsed: "
        + _f(v["agreement_where_authors_parsed"], 3)
        + ".",
        "",
        f"Ties (batched): {ties['ties']} of {ties['captions']} captions, "
        f"{ties['ties_kept']} kept and {ties['ties_rejected']} rejected by the summed "
        f"yes-margin. Kept: batched {_f(v['kept_share_batched'], 3)}, authors' "
        f"{_f(v['kept_share_authors'], 3)}; the authors' plurality was neither yes nor no on "
        f"{v['authors_winner_neither']} captions.",
    ]


def _streaming(report: dict[str, Any]) -> list[str]:
    lines = [f"Broker: {report['broker']}.", ""]
    if "ceiling" in report:
        lines += ceiling.markdown(report["ceiling"])
    if "catalog" in report:
        lines += catalog.markdown(report["catalog"])
    return lines
