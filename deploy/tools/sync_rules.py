"""Generate deploy/k8s/prometheusrule.yaml from deploy/prometheus/rules.yaml, the single source.

    python3 deploy/tools/sync_rules.py           # rewrite prometheusrule.yaml
    python3 deploy/tools/sync_rules.py --check   # exit 1 when it is out of date (make deploy-check)

The rule groups are copied as text, indented under ``spec:``, so the block scalars of the expressions
read the same in both files. Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "k8s" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/rules.yaml by deploy/tools/sync_rules.py: edit that file, then run
#   python3 deploy/tools/sync_rules.py
# The Prometheus Operator loads these groups into every Prometheus whose ruleSelector matches the labels
# below; kube-prometheus-stack, for instance, wants `release: <its release name>`, which an overlay adds.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: hume-bridge
spec:
"""


def render(rules_text: str) -> str:
    """The PrometheusRule manifest for the rule file ``rules_text``."""
    lines = rules_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("groups:")), None)
    if start is None:
        raise ValueError(f"{RULES.relative_to(ROOT)}: no top-level 'groups:' key")
    body = [("  " + line) if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the file is up to date")
    args = parser.parse_args(argv)
    wanted = render(RULES.read_text(encoding="utf-8"))
    current = PROMETHEUS_RULE.read_text(encoding="utf-8") if PROMETHEUS_RULE.exists() else ""
    if args.check:
        if current != wanted:
            print(
                f"{PROMETHEUS_RULE.relative_to(ROOT)} is out of date with {RULES.relative_to(ROOT)}: "
                "run python3 deploy/tools/sync_rules.py",
                file=sys.stderr,
            )
            return 1
        print(f"{PROMETHEUS_RULE.relative_to(ROOT)} matches {RULES.relative_to(ROOT)}")
        return 0
    if current != wanted:
        PROMETHEUS_RULE.write_text(wanted, encoding="utf-8")
        print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
