"""Cross-resource checks on a rendered kustomization, which no schema can see.

    python deploy/tools/check_rendered.py RENDERED.yaml [--core-out CORE.yaml]

Schemas validate each resource alone (kubernetes-validate, validate.mjs); these checks tie them together:
selectors select the pods, ports and probe paths agree with BRIDGE_HTTP_PORT, the grace period outlasts
the drain deadline, KEDA watches the consumer group the bridge joins and counts the sessions of the pods'
namespace against BRIDGE_V1_MAX_SESSIONS, the API key comes from the Secret,
and the dashboard ConfigMap carries deploy/grafana/hume-bridge.json unchanged. ``--core-out`` writes the
built-in kinds to a file for kubernetes-validate (it knows no custom resources).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "hume-bridge.json"
CUSTOM_GROUPS = ("monitoring.coreos.com/", "keda.sh/")


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check(docs: list[dict[str, Any]]) -> list[str]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)

    def one(kind: str) -> dict[str, Any]:
        found = by_kind.get(kind, [])
        if len(found) != 1:
            raise SystemExit(f"FAIL expected one {kind}, found {len(found)}")
        return found[0]

    problems: list[str] = []
    deployment, service, monitor = one("Deployment"), one("Service"), one("ServiceMonitor")
    pdb, policy, scaled = one("PodDisruptionBudget"), one("NetworkPolicy"), one("ScaledObject")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    config_names = [e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e]
    configs = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind.get("ConfigMap", [])}
    if len(config_names) != 1 or config_names[0] not in configs:
        return [f"Deployment: envFrom must name the generated ConfigMap, has {config_names}"]
    config = configs[config_names[0]]

    # Selectors select what they should.
    if not matches(deployment["spec"]["selector"]["matchLabels"], pod_labels):
        problems.append("Deployment: selector does not match its pod template")
    for name, selector in (
        ("Service", service["spec"]["selector"]),
        ("PodDisruptionBudget", pdb["spec"]["selector"]["matchLabels"]),
        ("NetworkPolicy", policy["spec"]["podSelector"]["matchLabels"]),
    ):
        if not matches(selector, pod_labels):
            problems.append(f"{name}: selector {selector} does not match the pods {pod_labels}")
    if not matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"].get("labels", {})):
        problems.append("ServiceMonitor: selector does not match the Service")

    # One port, named http, everywhere.
    port = int(config.get("BRIDGE_HTTP_PORT", "0"))
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if ports.get("http") != port:
        problems.append(f"container port http is {ports.get('http')}, BRIDGE_HTTP_PORT is {port}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "http":
            problems.append(f"{probe} must GET {path} on port http, has {get}")
    if [p.get("targetPort") for p in service["spec"]["ports"]] != ["http"]:
        problems.append("Service: one port with targetPort http")
    if [(e.get("port"), e.get("path")) for e in monitor["spec"]["endpoints"]] != [("http", "/metrics")]:
        problems.append("ServiceMonitor: scrape port http, path /metrics")
    ingress_ports = [
        p.get("port") for rule in policy["spec"].get("ingress", []) for p in rule.get("ports", [])
    ]
    if not ingress_ports or any(p not in ("http", port) for p in ingress_ports):
        problems.append(f"NetworkPolicy: ingress only to the http port, has {ingress_ports}")

    # Shutdown: the pod is killed only after the bridge's own drain deadline.
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    drain = float(config.get("BRIDGE_SHUTDOWN_DRAIN_S", "inf"))
    if not grace > drain:
        problems.append(f"terminationGracePeriodSeconds {grace} must exceed BRIDGE_SHUTDOWN_DRAIN_S {drain}")

    # Read-only root file system with a writable /tmp.
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
    if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
        problems.append("/tmp must be an emptyDir")

    # The Hume API key comes from the Secret hume-bridge-secrets, as a file or an environment variable.
    env = {e["name"]: e for e in container.get("env", [])}
    key_file = env.get("HUME_API_KEY_FILE", {}).get("value", "")
    from_file = any(
        key_file == f"{m['mountPath']}/{item['path']}"
        for m in container.get("volumeMounts", [])
        for item in volumes.get(m["name"], {}).get("secret", {}).get("items", [])
        if volumes[m["name"]]["secret"].get("secretName") == "hume-bridge-secrets"
        and item["key"] == "HUME_API_KEY"
    )
    ref = env.get("HUME_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
    from_env = ref.get("name") == "hume-bridge-secrets" and ref.get("key") == "HUME_API_KEY"
    if not (from_file or from_env):
        problems.append("HUME_API_KEY must come from secret hume-bridge-secrets, key HUME_API_KEY")
    if any(k in config for k in ("HUME_API_KEY", "BRIDGE_KAFKA_SASL_PASSWORD", "BRIDGE_KAFKA_SASL_USERNAME")):
        problems.append("secrets do not belong in the ConfigMap")

    # KEDA watches the group the bridge joins, on the brokers and a topic it consumes.
    (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "kafka"]
    meta = trigger["metadata"]
    expected = {
        "bootstrapServers": config.get("BRIDGE_KAFKA_BOOTSTRAP"),
        "consumerGroup": config.get("BRIDGE_GROUP_ID"),
        "allowIdleConsumers": "false",
    }
    for key, value in expected.items():
        if meta.get(key) != value:
            problems.append(f"ScaledObject: {key} is {meta.get(key)!r}, expected {value!r}")
    if meta.get("topic") not in config.get("BRIDGE_INPUT_TOPICS", "").split(","):
        problems.append(f"ScaledObject: topic {meta.get('topic')!r} is not in BRIDGE_INPUT_TOPICS")
    problems += _check_session_trigger(scaled, deployment, config)
    if scaled["spec"]["scaleTargetRef"].get("name") != deployment["metadata"]["name"]:
        problems.append("ScaledObject: scaleTargetRef does not name the Deployment")
    if "replicas" in deployment["spec"]:
        problems.append("Deployment: replicas belong to KEDA; leave spec.replicas unset")

    # The dashboard ConfigMap is deploy/grafana/hume-bridge.json, labelled for the Grafana sidecar.
    dashboards = [
        c for c in by_kind.get("ConfigMap", []) if c["metadata"].get("labels", {}).get("grafana_dashboard")
    ]
    if len(dashboards) != 1 or dashboards[0]["metadata"]["labels"]["grafana_dashboard"] != "1":
        problems.append('one ConfigMap labelled grafana_dashboard: "1" expected')
    elif json.loads(dashboards[0]["data"]["hume-bridge.json"]) != json.loads(DASHBOARD.read_text("utf-8")):
        problems.append("the dashboard ConfigMap differs from deploy/grafana/hume-bridge.json")
    return problems


def _check_session_trigger(
    scaled: dict[str, Any], deployment: dict[str, Any], config: dict[str, str]
) -> list[str]:
    """The prometheus trigger counts the streams of this namespace's pods against the session cap."""
    triggers = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    if len(triggers) != 1:
        return [f"ScaledObject: one prometheus trigger (sessions per pod) expected, found {len(triggers)}"]
    meta = triggers[0]["metadata"]
    problems: list[str] = []
    namespace = deployment["metadata"].get("namespace")
    selected = re.findall(r'namespace\s*=\s*"([^"]*)"', meta.get("query", ""))
    if not selected or any(n != namespace for n in selected):
        problems.append(
            f"ScaledObject: the prometheus query selects namespace {selected}, the pods run in {namespace!r} "
            "(repeat the namespace replacement of deploy/k8s/kustomization.yaml in the overlay)"
        )
    threshold = meta.get("threshold", "")
    if not threshold.isdigit() or int(threshold) < 1:
        problems.append(f"ScaledObject: prometheus threshold {threshold!r} must be a positive integer")
    cap = config.get("BRIDGE_V1_MAX_SESSIONS")
    if cap is not None and threshold != cap:
        problems.append(
            f"ScaledObject: prometheus threshold is {threshold!r}, BRIDGE_V1_MAX_SESSIONS is {cap!r}: "
            "pods are sized by the sessions each may hold"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", type=Path)
    parser.add_argument("--core-out", type=Path, help="write the built-in kinds here")
    args = parser.parse_args(argv)
    docs = [d for d in yaml.safe_load_all(args.rendered.read_text("utf-8")) if d]
    problems = check(docs)
    for problem in problems:
        print(f"FAIL {args.rendered}: {problem}", file=sys.stderr)
    if args.core_out:
        core = [d for d in docs if not d["apiVersion"].startswith(CUSTOM_GROUPS)]
        args.core_out.write_text(yaml.safe_dump_all(core, sort_keys=False), encoding="utf-8")
    if not problems:
        print(f"ok   {args.rendered}: {len(docs)} resources agree with each other")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
