"""Real outputs validated against the published JSON Schemas (python/milepost/schema/)."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

import milepost
from procs_helpers import square_or_fail

SCHEMAS = Path(milepost.__file__).parent / "schema"


@pytest.fixture(scope="module")
def validators():
    snapshot = json.loads((SCHEMAS / "snapshot-v1.json").read_text())
    jsonl = json.loads((SCHEMAS / "jsonl-v1.json").read_text())
    registry = Registry().with_resources(
        [
            ("https://milepost.invalid/schema/snapshot-v1.json", Resource.from_contents(snapshot)),
            ("https://milepost.invalid/schema/jsonl-v1.json", Resource.from_contents(jsonl)),
        ]
    )
    cls = jsonschema.Draft202012Validator
    cls.check_schema(snapshot)
    cls.check_schema(jsonl)
    return cls(snapshot, registry=registry), cls(jsonl, registry=registry)


def test_snapshots_progress_file_and_json_lines_follow_the_schema(validators, tmp_path, clock) -> None:
    snap_v, line_v = validators
    out = io.StringIO()
    progress = tmp_path / ".progress.json"
    with milepost.Run("schema", display="json", output=out, snapshot_file=progress, clock=clock) as run:
        with run.phase("map", total=10, unit="doc") as ph:
            with ph.step("inner") as step:
                for i in range(8):
                    clock.advance(0.5)
                    with step.item(f"doc-{i}") as item:
                        item.metric("cost_usd", 0.01)
                        if i == 0:  # an agent's report: an item_details event
                            item.progress(1, of=2)
                            item.check("ok", True)
                            item.artifact("out.txt", kind="modified")
                    run.poll()
            ph.fail("doc-9", "boom")
            ph.retry("doc-9")
            ph.skip()
        run.log("fine", level="warning", source="me")
        snap_v.validate(run.snapshot().data)
    snap_v.validate(json.loads(progress.read_text()))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {line["type"] for line in lines} == {"snapshot", "event"}
    assert "item_details" in {line.get("event") for line in lines}
    for line in lines:
        line_v.validate(line)


def test_worker_processes_output_follows_the_schema(validators) -> None:
    snap_v, _ = validators
    with milepost.Run("schema-workers", display="none") as run:
        milepost.process_map(
            square_or_fail, range(40), workers=2, return_exceptions=True, mp_context=mp.get_context("fork")
        )
        snap_v.validate(run.snapshot().data)


def test_what_the_history_keeps_of_a_snapshot_is_its_tree_lanes_and_resources_as_in_its_data() -> None:
    with milepost.Run("kept", display="none", history=False) as run:
        milepost.process_map(
            square_or_fail, range(40), workers=2, return_exceptions=True, mp_context=mp.get_context("fork")
        )
    snap = run.snapshot()  # the end's: with the last sample of the run's resources
    kept = snap.kept()
    assert set(kept) == {"root", "lanes", "resources"}
    # A lane for each worker that took items: the pool may hand all 40 to one of its two.
    assert kept["root"]["failed"] > 0 and kept["lanes"] and kept["resources"] is not None
    assert snap.data["recent"], "a snapshot with recent items, which the kept part leaves out"
    assert kept == {key: snap.data[key] for key in kept}, "each part as the whole snapshot has it"
    assert snap.kept() == kept, "the same once the whole snapshot is decoded"


def test_the_schema_rejects_what_is_not_a_snapshot(validators) -> None:
    snap_v, _ = validators
    with pytest.raises(jsonschema.ValidationError):
        snap_v.validate({"schema": 2, "root": {}})


def test_a_snapshot_saved_before_the_later_fields_still_validates(validators, clock) -> None:
    """`path`, `cost` and `events_dropped` came after version 1 was published: a snapshot
    saved without them is still a version 1 snapshot."""
    snap_v, _ = validators
    with milepost.Run("older", display="none", clock=clock, history=False) as run:
        with run.phase("map", total=2) as ph:
            ph.advance(2)
        data = run.snapshot().data
    del data["events_dropped"]

    def strip(node: dict) -> None:
        del node["path"], node["cost"]
        for child in node["children"]:
            strip(child)

    strip(data["root"])
    snap_v.validate(data)
    del data["root"]["children"][0]["done"]  # a field that was always there still is required
    with pytest.raises(jsonschema.ValidationError, match="'done' is a required property"):
        snap_v.validate(data)
