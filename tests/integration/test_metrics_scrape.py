"""Every metric the dashboard and the alert rules use is exported by a running bridge."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bridge.tools import samples
from bridge.tools.emulator import Emulator
from tests.conftest import TopicFactory
from tests.deploy_refs import exposition_names, referenced_metrics
from tests.integration.harness import (
    API_KEY,
    Collector,
    bridge_config,
    make_topics,
    outcomes,
    produce,
    running_bridge,
)
from tests.integration.test_bridge_faults import http_get_raw


async def test_dashboard_and_rules_only_use_scraped_metrics(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """Scrape /metrics of a bridge that processed records; no panel or alert refers to a missing series."""
    topics = await make_topics(new_topic, partitions=1)
    async with Emulator(api_key=API_KEY) as emu:
        config = bridge_config(kafka_bootstrap, emu.url, topics)
        async with running_bridge(config) as bridge:
            await produce(kafka_bootstrap, topics.media, [(b"k", samples.text(5).encode(), [])])
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 1, 60, "one outcome")
            assert bridge.http is not None
            status, body = await http_get_raw(bridge.http.port, "/metrics")
    assert status == 200
    scraped = exposition_names(text_string_to_metric_families(body.decode()))
    referenced = referenced_metrics()
    assert len(referenced) >= 15, "the dashboard and rules reference too few metrics to be read right"
    missing = {name: where for name, where in referenced.items() if name not in scraped}
    assert not missing, f"referenced but not exported: {missing}"
    assert "hume_bridge_records_total" in scraped
