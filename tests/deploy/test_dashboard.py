"""The Grafana dashboard loads in Grafana's dashboard schema (grafana-foundation-sdk's
models, generated from Grafana's schema) without losing a field, and every metric the
dashboard, the alerts and the operator's guide name is one the workers really export."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import REGISTRY

import streams.metrics  # noqa: F401  (registers every caslie metric)

ROOT = Path(__file__).parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "caslie.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
GUIDE = ROOT / "docs" / "operations.md"
NAME = re.compile(r"\bcaslie_[a-z_]+\b")
TOOLS = Path(os.environ.get("CASLIE_TOOLS", Path.home() / ".cache" / "caslie" / "tools"))


def exported() -> set[str]:
    """Every sample name the caslie metrics expose."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("caslie_"):
            continue
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def _lost(original: Any, loaded: Any, path: str = "") -> list[str]:
    """Paths of ``original`` that ``loaded`` lacks or changed (defaults it adds are fine)."""
    if isinstance(original, dict):
        if not isinstance(loaded, dict):
            return [path]
        return [
            p
            for key, value in original.items()
            for p in (
                [f"{path}/{key}"]
                if key not in loaded
                else _lost(value, loaded[key], f"{path}/{key}")
            )
        ]
    if isinstance(original, list):
        if not isinstance(loaded, list) or len(loaded) != len(original):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(original, loaded, strict=True))
            for p in _lost(a, b, f"{path}[{i}]")
        ]
    return [] if original == loaded else [path]


def test_dashboard_round_trips_through_grafanas_schema() -> None:
    data = json.loads(DASHBOARD.read_text())
    model = Dashboard.from_json(data)
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert not _lost(data, again), "fields Grafana's schema does not know were dropped"
    broken = {**data, "panels": [{**data["panels"][0], "gridPosition": {"h": 1}}]}
    loaded = json.loads(json.dumps(Dashboard.from_json(broken), cls=JSONEncoder))
    assert _lost(broken, loaded) == ["/panels[0]/gridPosition"], "the check can fail"
    assert {p["type"] for p in data["panels"]} <= {"timeseries", "stat"}


def test_dashboard_queries_only_exported_metrics() -> None:
    used = {m for expr in _exprs(json.loads(DASHBOARD.read_text())) for m in NAME.findall(expr)}
    assert used, "the dashboard queries no caslie metric"
    assert used <= exported(), sorted(used - exported())
    for needed in (
        "caslie_records_in_total",
        "caslie_consumer_lag",
        "caslie_batch_size_sum",
        "caslie_captions_total",
        "caslie_predictions_total",
        "caslie_dlq_records_total",
        "caslie_adapter_version",
    ):
        assert needed in used, f"the dashboard does not show {needed}"


def test_alerts_use_only_exported_metrics() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    used = {m for rule in rules for m in NAME.findall(rule["expr"])}
    assert used and used <= exported(), sorted(used - exported())
    guide = GUIDE.read_text()
    for rule in rules:
        assert rule["alert"] in guide, f"{rule['alert']} is not explained in docs/operations.md"


def test_every_exported_metric_is_documented() -> None:
    guide = GUIDE.read_text()
    families = {
        f.name + ("_total" if f.type == "counter" else "")
        for f in REGISTRY.collect()
        if f.name.startswith("caslie_")
    }
    missing = sorted(n for n in families if f"`{n}`" not in guide)
    assert not missing, f"not in docs/operations.md: {missing}"


def _promql_errors(exprs: list[str]) -> subprocess.CompletedProcess[str]:
    """tests/support/check_promql.mjs: Prometheus's own PromQL grammar on each expression."""
    grammar = TOOLS / "npm" / "node_modules" / "@prometheus-io" / "lezer-promql"
    node = shutil.which("node")
    if node is None or not grammar.is_dir():
        pytest.fail(f"node or {grammar} is missing: scripts/env.sh installs it")
    return subprocess.run(
        [node, str(ROOT / "tests" / "support" / "check_promql.mjs"), str(grammar)],
        input=json.dumps(exprs),
        capture_output=True,
        text=True,
    )


def test_every_alert_parses_as_promql_and_a_broken_one_does_not() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    out = _promql_errors([rule["expr"] for rule in rules])
    assert out.returncode == 0, out.stdout + out.stderr
    broken = _promql_errors(["sum by (stage (rate(caslie_records_in_total[5m]))"])
    assert broken.returncode == 1 and "syntax error" in broken.stdout


def test_a_failed_retrain_job_and_a_predictor_left_on_the_base_model_alert() -> None:
    """The retrain alert watches the Jobs of the CronJob deploy/k8s names (kube-state-metrics
    names them <cronjob>-<time>); the base-model alert finds a predicting instance without
    caslie_adapter_version while another one has it."""
    rules = {r["alert"]: r for r in yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]}
    manifests = (ROOT / "deploy" / "k8s" / "base" / "retrain-cronjob.yaml").read_text()
    [cronjob] = [d for d in yaml.safe_load_all(manifests) if d["kind"] == "CronJob"]
    retrain = rules["CaslieRetrainFailed"]["expr"]
    assert f'job_name=~"{cronjob["metadata"]["name"]}-.+"' in retrain
    assert 'kube_job_failed{condition="true"}' in retrain
    base = rules["CasliePredictorOnBaseModel"]["expr"]
    assert "unless on (instance) caslie_adapter_version" in base
    assert "caslie_predictions_total" in base
