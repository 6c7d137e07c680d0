"""The state a tick rewrites is small (issue 22): the job catalog, most of a large estate's
state, changes when jobs do and is written only then, in an object of its own beside the
state; the state names it, and a tick reads both. (Each job list, every
`discovery_interval`, confirms the jobs' records with a new time: a change too.)"""

from __future__ import annotations

import json
from pathlib import Path

from schedulerx_alert.core.state import load_catalog
from tests.world import GROUP, NS, World

JOBS = tuple(range(1000, 1400))  # a catalog of about 30 KiB


def _catalogs(world: World) -> list[Path]:
    return sorted(world.state_path.parent.glob(f"{world.state_path.name}.catalog.*"))


def test_the_catalog_is_written_when_jobs_change_not_every_tick(tmp_path: Path) -> None:
    with World(tmp_path, jobs=()) as world:
        for job_id in JOBS:
            world.sx.add_job(NS, GROUP, job_id, name=f"etl-{job_id}")
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        assert world.tick().jobs == len(JOBS)
        (catalog,) = _catalogs(world)
        doc = json.loads(world.state_path.read_bytes())
        assert "catalog" not in doc and catalog.name.endswith(doc["catalog_object"])
        assert len(load_catalog(catalog.read_bytes())) == len(JOBS)
        # Ticks go on between job lists (every 10 minutes): the catalog is not rewritten.
        written = catalog.stat().st_mtime_ns
        for _ in range(8):
            world.advance(60)
            summary = world.tick()
            assert summary.status == "ok" and summary.jobs == len(JOBS), summary.problems
        assert _catalogs(world) == [catalog] and catalog.stat().st_mtime_ns == written
        assert world.state_path.stat().st_size < catalog.stat().st_size
        # The alert names its job from the catalog the tick read back.
        world.sx.add_instance(1399, status=5, result="disk full")
        world.advance(60)
        world.tick()
        assert any("etl-1399" in text for text in world.texts())
        # A new job: the next job list changes the catalog, written anew, the old one gone.
        world.sx.add_job(NS, GROUP, 1400, name="etl-1400")
        for _ in range(2):
            world.advance(60)
            summary = world.tick()
        assert summary.jobs == len(JOBS) + 1
        (renewed,) = _catalogs(world)
        assert renewed != catalog
        assert len(load_catalog(renewed.read_bytes())) == len(JOBS) + 1


def test_a_missing_catalog_object_is_said_and_the_state_starts_afresh(tmp_path: Path) -> None:
    with World(tmp_path, jobs=()) as world:
        for job_id in JOBS:
            world.sx.add_job(NS, GROUP, job_id, name=f"etl-{job_id}")
        world.raw["watch"] = [
            {"namespace": NS, "group": GROUP, "jobs": "all", "receivers": ["ops"]}
        ]
        world.tick()
        (catalog,) = _catalogs(world)
        catalog.unlink()
        world.advance(60)
        summary = world.tick()
        # Read as corrupt: kept aside and said, never a quiet empty catalog.
        assert any("job catalog" in note and "missing" in note for note in summary.notes)
        assert summary.jobs == len(JOBS)
