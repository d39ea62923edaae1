"""Prometheus exposition of the live runs (their latest snapshots), via prometheus-client."""

from __future__ import annotations

import json
from typing import Iterator, Tuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..snapshot import node_paths
from .hub import Hub
from .streams import open_streams


class _Runs:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily]:
        items = GaugeMetricFamily("milepost_items", "Items processed, by status", labels=["run", "phase", "status"])
        total = GaugeMetricFamily("milepost_items_expected", "Items expected (the total)", labels=["run", "phase"])
        flight = GaugeMetricFamily("milepost_items_in_flight", "Items being processed", labels=["run", "phase"])
        rate = GaugeMetricFamily("milepost_rate_items_per_second", "Throughput", labels=["run", "phase"])
        eta = GaugeMetricFamily("milepost_eta_seconds", "Estimated seconds to go", labels=["run", "phase"])
        metric = GaugeMetricFamily("milepost_metric", "Summed metrics (tokens, cost)", labels=["run", "phase", "name"])
        running = GaugeMetricFamily("milepost_run_running", "1 while the run is running", labels=["run", "name"])
        for ch in self.hub.channels():
            if not ch.snapshot_seq:
                continue
            snap = json.loads(ch.snapshot_json)
            run_id = ch.run_id
            running.add_metric([run_id, ch.name], 1.0 if snap["root"]["state"] == "running" else 0.0)
            for path, node in [("", snap["root"]), *node_paths(snap["root"])]:
                for status in ("done", "failed", "skipped", "retried"):
                    items.add_metric([run_id, path, status], float(node[status]))
                if node["total"] is not None:
                    total.add_metric([run_id, path], float(node["total"]))
                flight.add_metric([run_id, path], float(node["in_flight"]))
                if node["rate"] is not None:
                    rate.add_metric([run_id, path], float(node["rate"]))
                if node["eta"] is not None:
                    eta.add_metric([run_id, path], float(node["eta"]))
                for name, value in node["metrics"].items():
                    metric.add_metric([run_id, path, name], float(value))
        streams = GaugeMetricFamily("milepost_dashboard_streams", "SSE and WebSocket streams open in this process")
        streams.add_metric([], float(open_streams()))
        yield from (items, total, flight, rate, eta, metric, running, streams)


def metrics_text(hub: Hub) -> Tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Runs(hub))
    return generate_latest(registry), CONTENT_TYPE_LATEST
