"""The shipped Prometheus alert rules parse, and every metric they name is one the dispatcher or Flower exports."""

from functools import cache
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from flower.events import PrometheusMetrics

from dispatcher.metrics import REGISTRY as API_REGISTRY
from workers.metrics import REGISTRY as WORKER_REGISTRY

RULES = Path(__file__).parent.parent / "deploy" / "prometheus-alerts.yml"
ALERTS: list[dict[str, Any]] = [
    rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
]


@cache  # Flower's metrics register themselves in the global registry: build them once
def exported() -> set[str]:
    """Every sample name the API, a worker and Flower can export (counters' ``_total``, histograms' ``_bucket``)."""
    flower = PrometheusMetrics()
    families = [*API_REGISTRY.collect(), *WORKER_REGISTRY.collect()]
    flower_families = [family for metric in vars(flower).values() for family in metric.collect()]
    names = set()
    for family in [*families, *flower_families]:
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    return names


def metric_names(node: Any) -> set[str]:
    """The metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name}
    found: set[str] = set()
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None:
            found |= metric_names(child)
    for child in getattr(node, "args", None) or []:
        found |= metric_names(child)
    return found


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_every_alert_parses_and_names_only_exported_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(promql_parser.parse(rule["expr"]))

    assert names
    assert names - exported() == set()


def test_the_alerts_cover_what_pages_an_operator() -> None:
    assert {rule["alert"] for rule in ALERTS} >= {
        "OtpVendorErrorRate",
        "OtpAllCircuitsOpen",
        "OtpSendBacklog",
        "OtpSendsOverdue",
        "OtpNoWorker",
        "OtpSendLatencyHigh",
        "OtpStoreDown",
    }
