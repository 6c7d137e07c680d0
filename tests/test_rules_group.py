"""Stories of the shared-cause grouping and of the error fingerprint behind it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from schedulerx_alert.core.findings import SHARED_CAUSE
from schedulerx_alert.core.group import fingerprint_error, group_shared_causes
from schedulerx_alert.core.model import InstanceStatus, JobKey
from schedulerx_alert.core.rules import RuleSettings
from tests.builders import T0
from tests.rules_driver import MINUTE, Monitor, key, kinds, run

JOBS = [key(92600 + n) for n in range(12)]


def twelve_jobs() -> Monitor:
    return Monitor(settings={job: RuleSettings() for job in JOBS})


def refused(n: int) -> str:
    return (
        f"java.sql.SQLException: Connection refused 10.0.0.5:3306 "
        f"(instance {1000 + n}, trace 0b3f{n:04x}e7a9c1d2, at 2026-11-25 10:00:{n:02d}.{n}12)"
    )


def test_twelve_jobs_refused_by_one_database_are_one_message() -> None:
    monitor = twelve_jobs()
    runs = [
        run(n + 1, InstanceStatus.FAILED, ended=T0 + n, job_id=job.job_id, result=refused(n))
        for n, job in enumerate(JOBS)
    ]
    found = monitor.tick(T0 + MINUTE, *runs)

    assert kinds(found) == [SHARED_CAUSE]
    shared = found[0]
    assert shared.jobs == tuple(JOBS)
    assert len(shared.instances) == 12
    assert shared.facts["job_count"] == 12
    assert shared.facts["jobs"] == tuple(str(job) for job in JOBS)
    assert "Connection refused 10.0.0.5:3306" in str(shared.facts["error_text"])
    assert shared.subject == str(JOBS[0]).rsplit("/", 1)[0]
    assert len(shared.facts["members"]) == 12  # type: ignore[arg-type]


def test_different_errors_stay_separate_messages() -> None:
    monitor = twelve_jobs()
    found = monitor.tick(
        T0 + MINUTE,
        run(1, job_id=JOBS[0].job_id, ended=T0, result="Connection refused 10.0.0.5:3306"),
        run(2, job_id=JOBS[1].job_id, ended=T0, result="Connection refused 10.0.0.5:3306"),
        run(3, job_id=JOBS[2].job_id, ended=T0, result="OutOfMemoryError: Java heap space"),
        run(4, job_id=JOBS[3].job_id, ended=T0, result="NullPointerException at Job.run"),
    )
    assert kinds(found) == [SHARED_CAUSE, "failed", "failed"]
    assert found[0].facts["job_count"] == 2


def test_one_job_failing_twice_alike_is_not_a_shared_cause() -> None:
    monitor = twelve_jobs()
    job_id = JOBS[0].job_id
    found = monitor.tick(
        T0 + MINUTE,
        run(1, job_id=job_id, ended=T0, result="timeout after 30s"),
        run(2, job_id=job_id, ended=T0 + 5, result="timeout after 31s"),
    )
    assert kinds(found) == ["failed", "failed"]


def test_the_number_of_jobs_that_makes_a_shared_cause_is_configurable() -> None:
    monitor = twelve_jobs()
    monitor.shared_cause_min_jobs = 3
    found = monitor.tick(
        T0 + MINUTE,
        *(run(n, job_id=JOBS[n].job_id, ended=T0, result="broker down") for n in range(2)),
    )
    assert kinds(found) == ["failed", "failed"]
    with pytest.raises(ValueError, match="at least 2 jobs"):
        group_shared_causes([], min_jobs=1)


def test_failures_without_error_text_are_not_grouped() -> None:
    monitor = twelve_jobs()
    found = monitor.tick(T0 + MINUTE, *(run(n, job_id=JOBS[n].job_id, ended=T0) for n in range(3)))
    assert kinds(found) == ["failed"] * 3


def test_jobs_in_different_groups_share_the_namespace_as_subject() -> None:
    other = JobKey(JOBS[0].namespace, "otherGroup", 5)
    monitor = Monitor(settings={JOBS[0]: RuleSettings(), other: RuleSettings()})
    a = run(1, job_id=JOBS[0].job_id, ended=T0, result="disk full")
    b = replace(run(2, ended=T0, result="disk full"), job=other)
    found = monitor.tick(T0 + MINUTE, a, b)
    assert kinds(found) == [SHARED_CAUSE]
    assert found[0].subject == JOBS[0].namespace


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("instance 123 failed", "instance 98765 failed"),
        ("trace 0a1b2c3d4e5f6789 lost", "trace ffee00112233aabb lost"),
        ("ptr 0xDEADBEEF bad", "ptr 0x1 bad"),
        (
            "id 123e4567-e89b-12d3-a456-426614174000 gone",
            "id 00000000-0000-0000-0000-000000000000 gone",
        ),
        ("at 2026-11-25 10:00:01.123 boom", "at 2026-11-26T23:59:59+08:00 boom"),
        ("at 10:00:01 boom", "at 23:59:59 boom"),
        ("refused 10.0.0.5:3306", "refused 192.168.1.20:5432"),
        ("refused [fe80::1]:80", "refused [2001:db8::ff00:42:8329]:443"),
        ("Connection   refused\n  retry", "connection refused retry"),
    ],
)
def test_run_specific_parts_are_normalised_away(one: str, other: str) -> None:
    assert fingerprint_error(one) == fingerprint_error(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Connection refused", "Connection reset"),
        ("table orders missing", "table users missing"),
        ("OutOfMemoryError", "StackOverflowError"),
    ],
)
def test_different_causes_keep_different_fingerprints(one: str, other: str) -> None:
    assert fingerprint_error(one) != fingerprint_error(other)


def test_the_fingerprint_reads_as_the_error() -> None:
    assert fingerprint_error("Connection refused 10.0.0.5:3306 (instance 42)") == (
        "connection refused <addr> (instance <n>)"
    )
    assert fingerprint_error("") == ""
