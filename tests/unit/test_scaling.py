"""The KEDA ScaledObject scales on lag and on v1 sessions per pod, and the cross-resource check of the
rendered manifests (deploy/tools/check_rendered.py) ties the session trigger to the pods' namespace and to
BRIDGE_V1_MAX_SESSIONS."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import deploy_refs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def check_rendered() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_rendered", ROOT / "deploy" / "tools" / "check_rendered.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kustomize_namespace_indices(path: Path) -> set[int]:
    """The `"`-delimited parts of the session query that a kustomization's replacements overwrite."""
    document = deploy_refs.load_yaml(path)
    return {
        target["options"]["index"]
        for replacement in document.get("replacements", [])
        if replacement["source"]["fieldPath"] == "metadata.namespace"
        for target in replacement["targets"]
        if target["fieldPaths"] == ["spec.triggers.[type=prometheus].metadata.query"]
        and target["options"]["delimiter"] == '"'
    }


def test_both_triggers_and_the_namespace_replacements_hit_the_namespace_matchers() -> None:
    """The ScaledObject has the lag trigger and the session trigger; the parts of the query the base and
    the example overlay replace with the namespace are exactly its namespace matchers, so editing the query
    cannot leave a selector on the wrong namespace or overwrite something else."""
    scaled = deploy_refs.load_yaml(deploy_refs.SCALED_OBJECT)
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["kafka", "prometheus"]
    query = scaled["spec"]["triggers"][1]["metadata"]["query"]
    parts = query.split('"')
    # Odd parts are the strings between double quotes; a namespace matcher's part follows `namespace=`.
    namespace_parts = {i for i in range(1, len(parts), 2) if re.search(r"namespace\s*=\s*$", parts[i - 1])}
    assert namespace_parts == {1, 5}
    assert {parts[i] for i in namespace_parts} == {"set-from-deployment"}
    for kustomization in (ROOT / "deploy" / "k8s", ROOT / "deploy" / "overlays" / "example"):
        assert _kustomize_namespace_indices(kustomization / "kustomization.yaml") == namespace_parts


def _resources(namespace: str, query_namespace: str, threshold: str) -> tuple[dict[str, Any], ...]:
    query = f'sum(a{{namespace="{namespace}"}}) + sum(b{{namespace="{query_namespace}"}})'
    scaled = {
        "spec": {
            "triggers": [
                {"type": "kafka", "metadata": {}},
                {
                    "type": "prometheus",
                    "metadata": {
                        "query": query,
                        "threshold": threshold,
                    },
                },
            ]
        }
    }
    deployment = {"metadata": {"name": "hume-bridge", "namespace": namespace}}
    return scaled, deployment


def test_the_session_trigger_check(check_rendered: ModuleType) -> None:
    """Agreeing resources pass; a selector on another namespace, a threshold that is not a count, or one
    that differs from BRIDGE_V1_MAX_SESSIONS is named."""
    check = check_rendered._check_session_trigger
    assert check(*_resources("media-ai", "media-ai", "200"), {}) == []
    assert check(*_resources("media-ai", "media-ai", "200"), {"BRIDGE_V1_MAX_SESSIONS": "200"}) == []
    (wrong_namespace,) = check(*_resources("media-ai", "hume-bridge", "200"), {})
    assert "selects namespace ['media-ai', 'hume-bridge'], the pods run in 'media-ai'" in wrong_namespace
    (not_a_count,) = check(*_resources("media-ai", "media-ai", "0.5"), {})
    assert "threshold '0.5' must be a positive integer" in not_a_count
    (other_cap,) = check(*_resources("media-ai", "media-ai", "200"), {"BRIDGE_V1_MAX_SESSIONS": "256"})
    assert "threshold is '200', BRIDGE_V1_MAX_SESSIONS is '256'" in other_cap
