"""The shipped Grafana dashboard loads, every query parses as PromQL and names only metrics the dispatcher exports."""

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from tests.test_alert_rules import exported, metric_names

DASHBOARD = Path(__file__).parent.parent / "deploy" / "grafana-dashboard.json"
BOARD: dict[str, Any] = json.loads(DASHBOARD.read_text())


def panels(container: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of the dashboard, those inside collapsed rows included."""
    found = []
    for panel in container.get("panels", []):
        found.append(panel)
        found += panels(panel)
    return found


QUERIES = [(panel["title"], target["expr"]) for panel in panels(BOARD) for target in panel.get("targets", [])]


@pytest.mark.parametrize(("title", "expr"), QUERIES, ids=[f"{title}/{expr[:40]}" for title, expr in QUERIES])
def test_every_query_parses_and_names_only_exported_metrics(title: str, expr: str) -> None:
    # Given one query of the dashboard; when it is parsed
    names = metric_names(promql_parser.parse(expr))

    # Then it names metrics, all of them exported
    assert names, title
    assert names - exported() == set(), title


def test_every_panel_queries_the_dashboards_prometheus() -> None:
    # Given the dashboard's panels; then each has a query, and every query asks the templated data source
    assert all(panel.get("targets") for panel in panels(BOARD) if panel["type"] != "row")
    sources = {target["datasource"]["uid"] for panel in panels(BOARD) for target in panel.get("targets", [])}
    assert sources == {"${datasource}"}
    assert [variable["name"] for variable in BOARD["templating"]["list"]] == ["datasource"]


def test_the_dashboard_shows_conversions_latency_errors_receipts_and_routes() -> None:
    # Given the dashboard's panel titles; then the panels are there
    titles = {panel["title"] for panel in panels(BOARD)}

    assert titles >= {
        "Conversion rate by vendor",
        "Conversion rate by country",
        "Vendor call p99",
        "Vendor error rate",
        "Receipt rate",
        "Sends by vendor, channel and country",
        "Delivered receipt rate by route",
        "Conversion rate by route",
        "Expired unconverted by route",
        "First vendor by country (routing)",
    }
    assert len({panel["id"] for panel in panels(BOARD)}) == len(panels(BOARD))
