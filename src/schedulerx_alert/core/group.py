"""One message for a shared cause: this tick's failures across jobs with the same error.

Twelve jobs that lose the same database fail with texts that differ only in instance
ids, timestamps and trace ids. Their errors are fingerprinted (those parts normalised
away) and, when at least `min_jobs` jobs share a fingerprint, their failure findings
become one `shared_cause` finding that lists every job and run.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from types import MappingProxyType

from schedulerx_alert.core.findings import SHARED_CAUSE, Finding
from schedulerx_alert.core.model import JobKey

DEFAULT_MIN_JOBS = 2
# Enough to tell causes apart; a stack trace beyond this adds frames, not causes.
_MAX_TEXT = 1000
_MAX_SHOWN = 200

_I = re.IGNORECASE
# Order matters: whole shapes first, so a timestamp is not read as numbers. Compiled on
# the first failure text compared (`_normalisers`): most ticks have none, and these cost
# more to compile than the rest of the module to load.
_NORMALISER_SOURCES: tuple[tuple[str, int, str], ...] = (
    (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", _I, "<uuid>"),
    (
        r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?"
        r"(?:Z|[+-]\d{2}:?\d{2})?",
        _I,
        "<time>",
    ),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", 0, "<time>"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", 0, "<addr>"),
    (r"(?<![\w:])(?=[0-9a-f:]*:[0-9a-f]*:)[0-9a-f:]{2,39}(?![\w:])", _I, "<addr>"),
    (r"\b0x[0-9a-f]+\b", _I, "<hex>"),
    (r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", _I, "<hex>"),
    (r"[A-Za-z0-9_]*\d[A-Za-z0-9_]*", 0, "<n>"),
    (r"<n>(?:[.,:/-]<n>)+", 0, "<n>"),
    (r"\s+", 0, " "),
)


@functools.cache
def _normalisers() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(source, flags), shown) for source, flags, shown in _NORMALISER_SOURCES)


def fingerprint_error(text: str) -> str:
    """The error text with its run-specific parts (numbers, ids, hex, UUIDs, timestamps,
    addresses and ports) replaced by placeholders; "" when there is no text."""
    normal = text[:_MAX_TEXT]
    for pattern, placeholder in _normalisers():
        normal = pattern.sub(placeholder, normal)
    return normal.strip().lower()


def group_shared_causes(
    findings: Sequence[Finding], min_jobs: int = DEFAULT_MIN_JOBS
) -> list[Finding]:
    """`findings` with each shared cause's run failures replaced by one finding, in order."""
    if min_jobs < 2:
        raise ValueError(f"a shared cause needs at least 2 jobs, not {min_jobs}")
    buckets: dict[str, list[int]] = {}
    for index, found in enumerate(findings):
        if found.is_run_failure and len(found.instances) == 1:
            key = fingerprint_error(found.instances[0].result)
            if key:
                buckets.setdefault(key, []).append(index)
    cause_of: dict[int, str] = {}
    for key, members in buckets.items():
        if len({job for i in members for job in findings[i].jobs}) >= min_jobs:
            cause_of.update((i, key) for i in members)
    grouped: list[Finding] = []
    for index, found in enumerate(findings):
        cause = cause_of.get(index)
        if cause is None:
            grouped.append(found)
        elif buckets[cause][0] == index:
            grouped.append(_shared(cause, [findings[i] for i in buckets[cause]]))
    return grouped


def _shared(key: str, members: list[Finding]) -> Finding:
    jobs = tuple(dict.fromkeys(job for m in members for job in m.jobs))
    instances = tuple(inst for m in members for inst in m.instances)
    fingerprints = tuple(m.fingerprint for m in members)
    digest = hashlib.sha256("\n".join(sorted(fingerprints)).encode()).hexdigest()[:16]
    return Finding(
        kind=SHARED_CAUSE,
        subject=_common_subject(jobs),
        fingerprint=f"{SHARED_CAUSE}:{digest}",
        at=max(m.at for m in members),
        instances=instances,
        jobs=jobs,
        facts=MappingProxyType(
            {
                "error_text": instances[0].result,
                "error_fingerprint_text": key[:_MAX_SHOWN],
                "job_count": len(jobs),
                "instance_count": len(instances),
                "jobs": tuple(str(job) for job in jobs),
                "kinds": tuple(dict.fromkeys(m.kind for m in members)),
                # Each member is announced by this finding: dedup marks them all.
                "members": fingerprints,
            }
        ),
    )


def _common_subject(jobs: tuple[JobKey, ...]) -> str:
    """The application group all the jobs share, else their namespace, else "*"."""
    groups = {(job.namespace, job.group) for job in jobs}
    if len(groups) == 1:
        namespace, group = groups.pop()
        return f"{namespace}/{group}"
    namespaces = {job.namespace for job in jobs}
    return namespaces.pop() if len(namespaces) == 1 else "*"
