"""Prometheus exposition of the runs on show (their latest snapshots: the final one of a run
that ended, the last one of a run whose process crashed), via prometheus-client."""

from __future__ import annotations

import json
from typing import Iterator, List, Optional, Tuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..snapshot import node_paths
from .hub import Channel, state_of
from .streams import open_streams

#: The states `milepost_run_state` has a series for (each run: 1 for its own, 0 for the others).
STATES = ("pending", "running", "completed", "failed", "cancelled", "crashed")


class _Runs:
    def __init__(self, channels: List[Channel]) -> None:
        self.channels = channels

    def collect(self) -> Iterator[GaugeMetricFamily]:
        items = GaugeMetricFamily("milepost_items", "Items processed, by status", labels=["run", "phase", "status"])
        total = GaugeMetricFamily("milepost_items_expected", "Items expected (the total)", labels=["run", "phase"])
        flight = GaugeMetricFamily("milepost_items_in_flight", "Items being processed", labels=["run", "phase"])
        rate = GaugeMetricFamily("milepost_rate_items_per_second", "Throughput", labels=["run", "phase"])
        eta = GaugeMetricFamily("milepost_eta_seconds", "Estimated seconds to go", labels=["run", "phase"])
        metric = GaugeMetricFamily("milepost_metric", "Summed metrics (tokens, cost)", labels=["run", "phase", "name"])
        running = GaugeMetricFamily("milepost_run_running", "1 while the run is running", labels=["run", "name"])
        states = GaugeMetricFamily(
            "milepost_run_state", "1 for the run's state (crashed: its process died)", labels=["run", "name", "state"]
        )
        usage = _Usage()
        for ch in self.channels:
            if not ch.snapshot_seq:
                continue
            snap = json.loads(ch.snapshot_json)
            run_id, state = ch.run_id, state_of(ch, snap["root"])
            running.add_metric([run_id, ch.name], 1.0 if state == "running" else 0.0)
            for one in STATES:
                states.add_metric([run_id, ch.name, one], 1.0 if state == one else 0.0)
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
            usage.add(run_id, snap)
        streams = GaugeMetricFamily("milepost_dashboard_streams", "SSE and WebSocket streams open in this process")
        streams.add_metric([], float(open_streams()))
        yield from (items, total, flight, rate, eta, metric, running, states, *usage.families, streams)


class _Usage:
    """What a run's processes use, from its latest resource sample: the whole process tree
    (`lane=""`, as `phase=""` is the run) and each worker process's lane (`lane="pid 4242"`);
    the free share of each filesystem it writes to. A figure that is unknown has no sample."""

    def __init__(self) -> None:
        self.cpu = GaugeMetricFamily(
            "milepost_process_cpu_ratio",
            'CPU in use, in cores (1.0 = one core busy): the run\'s process tree (lane="") or a worker',
            labels=["run", "lane"],
        )
        self.rss = GaugeMetricFamily(
            "milepost_process_resident_bytes",
            'Resident memory: the run\'s process tree (lane="") or a worker',
            labels=["run", "lane"],
        )
        self.disk = GaugeMetricFamily(
            "milepost_disk_free_ratio", "Free share of a filesystem the run writes to", labels=["run", "path"]
        )
        self.families = (self.cpu, self.rss, self.disk)

    def add(self, run_id: str, snap: dict) -> None:
        r = snap.get("resources")
        if r is None:
            return
        self._process(run_id, "", r["cpu_percent"], r["rss_bytes"])
        for lane in snap["lanes"]:
            self._process(run_id, lane["name"], lane.get("cpu_percent"), lane.get("rss_bytes"))
        for d in r["disks"]:
            if d["free_fraction"] is not None:
                self.disk.add_metric([run_id, d["path"]], float(d["free_fraction"]))

    def _process(self, run_id: str, lane: str, cpu: Optional[float], rss: Optional[int]) -> None:
        if cpu is not None:
            self.cpu.add_metric([run_id, lane], cpu / 100.0)
        if rss is not None:
            self.rss.add_metric([run_id, lane], float(rss))


def metrics_text(channels: List[Channel]) -> Tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Runs(channels))
    return generate_latest(registry), CONTENT_TYPE_LATEST
