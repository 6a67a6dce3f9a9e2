"""The metrics that the deployment assets rely on: every PromQL expression of the Grafana dashboard
(deploy/grafana/hume-bridge.json), of the alert rules (deploy/prometheus/rules.yaml) and of the KEDA
ScaledObject's prometheus triggers (deploy/k8s/scaledobject.yaml), and the metric selectors in them.

Used by tests/unit/test_deploy_metrics.py (names against the registry of ``bridge.metrics.Metrics``), by
integration tests (names against a scrape of a running bridge: :func:`exposition_names` accepts the
families of ``prometheus_client.parser.text_string_to_metric_families``) and by scripts/deploy_check.sh:

    python tests/deploy_refs.py promtool-rules OUT.json   # dashboard and KEDA queries, as a rule file
    python tests/deploy_refs.py names                     # every referenced name and where it is used

The PromQL reader here only finds selectors (metric names and label matchers); whether an expression
parses is promtool's job. The standard library is enough, except PyYAML for the rule file.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "hume-bridge.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "k8s" / "prometheusrule.yaml"
SCALED_OBJECT = ROOT / "deploy" / "k8s" / "scaledobject.yaml"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"

# What Grafana's interval variables become when a dashboard query is checked outside Grafana.
GRAFANA_INTERVALS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}

# Suffixes under which the text exposition format shows a family of each type.
EXPOSITION_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}

# Labels that the scrape adds to every series (Prometheus Operator ServiceMonitor targets).
TARGET_LABELS = frozenset({"namespace", "pod", "service", "endpoint", "container", "job", "instance"})


@dataclass(frozen=True)
class Expr:
    """One PromQL expression and where it comes from."""

    where: str
    promql: str


@dataclass(frozen=True)
class Selector:
    """A vector selector: ``metric{label op "value", ...}``."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]


# --- where the expressions are ---------------------------------------------------------------------


def dashboard_exprs(path: Path = DASHBOARD) -> list[Expr]:
    """Every query of the dashboard: panel targets and query variables, Grafana variables left as written."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    exprs: list[Expr] = []
    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                exprs.append(
                    Expr(f"{path.name}: panel '{panel.get('title')}' {target.get('refId')}", target["expr"])
                )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        promql = variable_query_promql(text)
        if promql:
            exprs.append(Expr(f"{path.name}: variable '{variable.get('name')}'", promql))
    return exprs


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard's ``panels`` list, rows and the panels inside rows included."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def variable_query_promql(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query (``label_values(sel, label)``,
    ``query_result(expr)``), or None for queries without one (``label_names()``, ``metrics(re)``)."""
    query = query.strip()
    for func, pattern in (
        ("label_values", r"label_values\((?P<inner>.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)"),
        ("query_result", r"query_result\((?P<inner>.*)\)"),
    ):
        if query.startswith(func + "("):
            match = re.fullmatch(pattern, query, flags=re.DOTALL)
            if match is None:
                raise ValueError(f"cannot read the variable query {query!r}")
            return match.group("inner").strip()
    if query.startswith(("label_names(", "metrics(")) or not query:
        return None
    return query


def rule_exprs(path: Path = RULES) -> list[Expr]:
    """Every ``expr`` of the rule file (alerting and recording rules)."""
    return [Expr(f"{path.name}: {name}", expr) for name, expr, _ in _rules(load_yaml(path))]


def _rules(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for group in document.get("groups", []):
        for rule in group.get("rules", []):
            yield rule.get("alert") or rule.get("record"), rule["expr"], rule


def alert_rules(path: Path = RULES) -> list[dict[str, Any]]:
    """The alerting rules of the rule file, as parsed."""
    return [rule for _, _, rule in _rules(load_yaml(path)) if "alert" in rule]


def scaler_exprs(path: Path = SCALED_OBJECT) -> list[Expr]:
    """The query of every prometheus trigger of the ScaledObject."""
    triggers = load_yaml(path)["spec"]["triggers"]
    return [
        Expr(f"{path.name}: trigger {n}", trigger["metadata"]["query"])
        for n, trigger in enumerate(triggers)
        if trigger["type"] == "prometheus"
    ]


def load_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def all_exprs() -> list[Expr]:
    return dashboard_exprs() + rule_exprs() + scaler_exprs()


# --- Grafana variables -----------------------------------------------------------------------------

_GRAFANA_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::[^}]*)?\}|\[\[(?P<old>\w+)\]\]|\$(?P<plain>\w+)")


def substitute_grafana_variables(promql: str) -> str:
    """Replace Grafana's interval variables by fixed durations so that promtool can parse the query.
    Other variables (``$namespace``) only appear inside label-matcher strings and are left alone."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("old") or match.group("plain")
        return GRAFANA_INTERVALS.get(name, match.group(0))

    return _GRAFANA_VARIABLE.sub(replace, promql)


# --- reading selectors out of PromQL ---------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:[a-zA-Z]+\d*)*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],@])
    """,
    re.VERBOSE,
)
# Words that are never metric names at the places where they occur.
_KEYWORDS = frozenset(
    {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan", "group_left", "group_right"}
)
# Followed by a parenthesised label list.
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def _tokens(promql: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(promql):
        match = _TOKEN.match(promql, pos)
        if match is None:
            raise ValueError(f"unexpected character {promql[pos]!r} at {pos} in {promql!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group(0)))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def selectors(promql: str) -> list[Selector]:
    """The vector selectors of an expression, in order. Function names, aggregation keywords, grouping
    label lists, durations and numbers are skipped; ``{__name__="x"}`` counts as metric ``x``."""
    tokens = _tokens(substitute_grafana_variables(promql))
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and text in _LABEL_LIST_KEYWORDS and nxt == "(":
            i = _skip_group(tokens, i + 1, "(", ")")
            continue
        # A function or aggregation: `rate(`, `sum(`, `sum by (..) (` or `sum without (..) (`.
        if kind == "ident" and (nxt in ("(", "by", "without") or text.lower() in _KEYWORDS):
            i += 1
            continue
        if kind == "ident" or text == "{":
            metric = text if kind == "ident" else ""
            if kind == "ident":
                i += 1
            matchers: tuple[tuple[str, str, str], ...] = ()
            if i < len(tokens) and tokens[i][1] == "{":
                end = _skip_group(tokens, i, "{", "}")
                matchers = _matchers(tokens[i + 1 : end - 1], promql)
                i = end
            if not metric:
                metric = next((v for label, op, v in matchers if label == "__name__" and op == "="), "")
                matchers = tuple(m for m in matchers if m[0] != "__name__")
            if not metric:
                raise ValueError(f"selector without a metric name in {promql!r}")
            found.append(Selector(metric, matchers))
            continue
        if text == "[":
            i = _skip_group(tokens, i, "[", "]")
            continue
        i += 1
    return found


def _skip_group(tokens: list[tuple[str, str]], i: int, opening: str, closing: str) -> int:
    """Index just after the bracket that closes the one at ``i``."""
    depth = 0
    while i < len(tokens):
        if tokens[i][1] == opening:
            depth += 1
        elif tokens[i][1] == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening}{closing}")


def _matchers(tokens: list[tuple[str, str]], promql: str) -> tuple[tuple[str, str, str], ...]:
    out: list[tuple[str, str, str]] = []
    parts = [tokens[k : k + 3] for k in range(0, len(tokens), 4)]  # label, op, "value", [","]
    for part in parts:
        if len(part) != 3 or part[0][0] != "ident" or part[2][0] != "string":
            raise ValueError(f"cannot read the label matchers in {promql!r}")
        out.append((part[0][1], part[1][1], _unquote(part[2][1])))
    return tuple(out)


def metric_names(promql: str) -> set[str]:
    """Names of the series an expression selects, as exposed (``x_total``, ``x_bucket``, ``x``)."""
    return {selector.metric for selector in selectors(promql)}


def referenced_metrics(exprs: Iterable[Expr] | None = None) -> dict[str, list[str]]:
    """Every metric name the dashboard and the rules select, with the places that use it."""
    used: dict[str, list[str]] = {}
    for expr in all_exprs() if exprs is None else exprs:
        for name in sorted(metric_names(expr.promql)):
            used.setdefault(name, []).append(expr.where)
    return used


# --- what a registry or a scrape exposes -----------------------------------------------------------


def exposition_names(families: Iterable[Any]) -> dict[str, str]:
    """Series names as the text format shows them, mapped to their family's name. ``families`` are
    ``prometheus_client`` Metric objects (``registry.collect()`` or a parsed scrape); they carry the
    family name without the ``_total`` of counters, and that is how a counter ``x`` is exposed as ``x_total``.
    Families without samples (labelled metrics with no child yet) are included."""
    names: dict[str, str] = {}
    for family in families:
        for suffix in EXPOSITION_SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = family.name
    return names


# --- command line ----------------------------------------------------------------------------------


def promtool_rule_file(exprs: Iterable[Expr]) -> dict[str, Any]:
    """A rule file with each expression as a recording rule, for ``promtool check rules``."""
    rules = []
    for n, expr in enumerate(exprs, start=1):
        rules.append(
            {
                "record": f"dashboard_query_{n}",
                "expr": substitute_grafana_variables(expr.promql),
                "labels": {"source": expr.where},
            }
        )
    return {"groups": [{"name": "hume-bridge-dashboard-queries", "rules": rules}]}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "promtool-rules":
        exprs = dashboard_exprs() + scaler_exprs()
        # JSON is YAML: promtool reads it as a rule file, and this needs no YAML library.
        Path(argv[1]).write_text(json.dumps(promtool_rule_file(exprs), indent=1), encoding="utf-8")
        print(f"{len(exprs)} dashboard and KEDA queries -> {argv[1]}")
        return 0
    if argv == ["names"]:
        for name, places in sorted(referenced_metrics().items()):
            print(f"{name}\t{len(places)}\t{places[0]}")
        return 0
    print("usage: deploy_refs.py promtool-rules OUT.json | names", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
