"""The dashboard, the alert rules and the KEDA triggers use only metrics the bridge exports, with their real
labels; the PrometheusRule carries the rule file unchanged; every alert leads to a runbook section."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from bridge.metrics import OUTCOMES, RECONNECT_REASONS, SESSION_STATES, V1_ENDPOINTS, V1_MODES, Metrics
from tests import deploy_refs
from tests.deploy_refs import Expr

# Label values that come from a fixed set in bridge/metrics.py: a query filtering on another value
# would match nothing, silently.
FIXED_LABEL_VALUES = {
    ("hume_bridge_records_total", "outcome"): set(OUTCOMES),
    ("hume_bridge_sessions", "state"): set(SESSION_STATES),
    ("hume_bridge_reconnects_total", "reason"): set(RECONNECT_REASONS),
    ("hume_bridge_v1_frames_sent_total", "endpoint"): set(V1_ENDPOINTS),
    ("hume_bridge_v1_rate_limited_total", "endpoint"): set(V1_ENDPOINTS),
    ("hume_bridge_usage_seconds_total", "endpoint"): set(V1_ENDPOINTS),
    ("hume_bridge_usage_seconds_total", "mode"): set(V1_MODES),
}


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture(scope="module")
def exposed(metrics: Metrics) -> dict[str, str]:
    """Series name as scraped -> family name."""
    return deploy_refs.exposition_names(metrics.registry.collect())


@pytest.fixture(scope="module")
def label_names(metrics: Metrics) -> dict[str, set[str]]:
    """Family name -> declared label names. prometheus_client has no public accessor for the label
    names of a metric without children, so this reads the attribute where it keeps them."""
    out: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            (family,) = (m.name for m in value.describe())
            out[family] = set(getattr(value, "_labelnames", ()))
    return out


@pytest.fixture(scope="module")
def exprs() -> list[Expr]:
    return deploy_refs.all_exprs()


def test_the_dashboard_the_rules_and_the_scaler_have_queries(exprs: list[Expr]) -> None:
    """All three sources are read: the dashboard's panel and variable queries, every rule expression and
    the query of the ScaledObject's prometheus trigger."""
    wheres = {e.where.split(":")[0] for e in exprs}
    assert wheres == {deploy_refs.DASHBOARD.name, deploy_refs.RULES.name, deploy_refs.SCALED_OBJECT.name}
    assert len(deploy_refs.scaler_exprs()) == 1
    assert len(deploy_refs.alert_rules()) >= 7


def test_every_referenced_metric_is_exported(exprs: list[Expr], exposed: dict[str, str]) -> None:
    """Each name a query selects is a series the bridge exposes: counters with ``_total``, histograms
    as ``_bucket``/``_sum``/``_count``, gauges as declared."""
    missing = {
        name: places for name, places in deploy_refs.referenced_metrics(exprs).items() if name not in exposed
    }
    assert not missing, "not exported by bridge.metrics.Metrics: " + json.dumps(missing, indent=1)


def test_label_matchers_use_declared_labels(
    exprs: list[Expr], exposed: dict[str, str], label_names: dict[str, set[str]]
) -> None:
    """A matcher names a label of its metric (or one the scrape adds); ``le`` only on buckets."""
    wrong = []
    for expr in exprs:
        for selector in deploy_refs.selectors(expr.promql):
            family = exposed.get(selector.metric)
            if family is None:
                continue  # reported by test_every_referenced_metric_is_exported
            allowed = label_names.get(family, set()) | deploy_refs.TARGET_LABELS
            if selector.metric.endswith("_bucket"):
                allowed = allowed | {"le"}
            wrong += [
                f"{expr.where}: {selector.metric}{{{label}}}"
                for label, _, _ in selector.matchers
                if label not in allowed
            ]
    assert not wrong, wrong


def test_label_values_come_from_the_fixed_sets(exprs: list[Expr]) -> None:
    """Outcomes, session states, reconnect reasons, v1 endpoints and modes in queries are values the
    bridge emits."""
    wrong = []
    for expr in exprs:
        for selector in deploy_refs.selectors(expr.promql):
            for label, op, value in selector.matchers:
                known = FIXED_LABEL_VALUES.get((selector.metric, label))
                if known is None or "$" in value:
                    continue
                values = set(value.split("|")) if op in ("=~", "!~") else {value}
                wrong += [f"{expr.where}: {label}={v!r}" for v in sorted(values - known)]
    assert not wrong, wrong


def test_selector_reader_skips_functions_keywords_and_strings() -> None:
    """Only vector selectors are read: not functions, aggregations, grouping labels, durations,
    offsets or the contents of strings; Grafana's interval variables are substituted."""
    promql = (
        'sum by (le) (rate(a_bucket{x="y{z} and b", pod=~"$pod"}[$__rate_interval])) '
        '/ on (ns) group_left (pod) b offset 5m > bool 1e3 unless absent({__name__="c"})'
    )
    assert deploy_refs.metric_names(promql) == {"a_bucket", "b", "c"}
    assert deploy_refs.selectors(promql)[0].matchers == (("x", "=", "y{z} and b"), ("pod", "=~", "$pod"))
    assert deploy_refs.substitute_grafana_variables("x[$__rate_interval] ${__range}") == "x[5m] 1h"
    assert deploy_refs.variable_query_promql('label_values(m{a="$b"}, pod)') == 'm{a="$b"}'
    assert deploy_refs.variable_query_promql("label_names()") is None


def test_exposition_names_follow_the_text_format(exposed: dict[str, str]) -> None:
    """Counters are exposed with ``_total`` only, histograms with their sub-series."""
    assert "hume_bridge_records_total" in exposed
    assert "hume_bridge_records" not in exposed
    assert {"hume_bridge_request_seconds_bucket", "hume_bridge_request_seconds_count"} <= set(exposed)
    assert "hume_bridge_request_seconds" not in exposed
    assert exposed["hume_bridge_sessions"] == "hume_bridge_sessions"


def test_prometheusrule_carries_the_rule_file() -> None:
    """deploy/k8s/prometheusrule.yaml has exactly the groups of deploy/prometheus/rules.yaml."""
    rule_file = deploy_refs.load_yaml(deploy_refs.RULES)
    resource = deploy_refs.load_yaml(deploy_refs.PROMETHEUS_RULE)
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"] == rule_file, "run: python3 deploy/tools/sync_rules.py"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("rule", deploy_refs.alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_has_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    """Each alert carries summary, description and a runbook_url that points at its own section of
    docs/OPERATIONS.md, and a severity the routing understands."""
    annotations = rule.get("annotations", {})
    assert annotations.get("summary") and annotations.get("description")
    assert rule.get("labels", {}).get("severity") in {"critical", "warning"}
    url = annotations.get("runbook_url", "")
    assert url.endswith("/OPERATIONS.md#" + rule["alert"].lower()), url
    anchor = url.rsplit("#", 1)[1]
    assert anchor in _anchors(deploy_refs.OPERATIONS.read_text(encoding="utf-8")), (
        f"no section '{rule['alert']}' in docs/OPERATIONS.md"
    )


def test_dashboard_structure() -> None:
    """The dashboard selects its Prometheus through a datasource variable used by every panel and
    query, panel ids are unique, panels fit the 24-column grid, and every query has a refId."""
    dashboard = json.loads(deploy_refs.DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(deploy_refs.panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    problems = []
    for panel in panels:
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            problems.append(f"{panel['title']}: wider than the grid")
        if panel["type"] == "row":
            continue
        uses = [panel.get("datasource", {})] + [t.get("datasource", {}) for t in panel.get("targets", [])]
        if any(ds.get("uid") != "${datasource}" for ds in uses):
            problems.append(f"{panel['title']}: not on the ${{datasource}} variable")
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if not refs or None in refs or len(refs) != len(set(refs)):
            problems.append(f"{panel['title']}: targets need distinct refIds")
    for variable in variables.values():
        if variable["type"] == "query" and variable["datasource"].get("uid") != "${datasource}":
            problems.append(f"variable {variable['name']}: not on the ${{datasource}} variable")
    assert not problems, problems
