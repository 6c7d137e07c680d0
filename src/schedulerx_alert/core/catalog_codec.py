"""The job catalog in the state, compactly: one short list per job, grouped by group.

``{"ns/group": [[job_id, name, enabled, time_type, expression, refreshed_at, calendar,
timeout_enabled, timeout_seconds, contacts], ...]}``; trailing values at their defaults are
left out, so a plain cron job costs about 60 bytes. `decode` raises ValueError naming the
field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from schedulerx_alert.core.catalog import Contact, JobInfo
from schedulerx_alert.core.model import JobKey
from schedulerx_alert.core.polling import group_key_of, group_key_text

# Bounds on what one entry may carry: a catalog is data from SchedulerX, kept every tick.
MAX_NAME = 200
MAX_EXPRESSION = 200
MAX_CONTACTS = 20
MAX_CONTACT_FIELD = 100


def encode(catalog: Mapping[JobKey, JobInfo]) -> dict[str, list[list[Any]]]:
    groups: dict[str, list[list[Any]]] = {}
    texts: dict[tuple[str, str], str] = {}  # a group's text, once per group, not per job
    for key in sorted(catalog):
        info = catalog[key]
        row: list[Any] = [
            key.job_id,
            info.name[:MAX_NAME],
            int(info.enabled),
            info.time_type,
            info.time_expression[:MAX_EXPRESSION],
            round(info.refreshed_at),
            info.calendar[:MAX_EXPRESSION],
            int(info.timeout_enabled),
            info.timeout_seconds,
            [[c.name, c.phone, c.user_id] for c in info.contacts[:MAX_CONTACTS]],
        ]
        defaults: list[Any] = ["", 0, None, []]
        while len(row) > 6 and row[-1] == defaults[len(row) - 7]:
            row.pop()
        group = (key.namespace, key.group)
        text = texts.get(group)
        if text is None:
            text = texts[group] = group_key_text(group)
        groups.setdefault(text, []).append(row)
    return groups


def decode(raw: Any) -> dict[JobKey, JobInfo]:
    if not isinstance(raw, dict):
        raise ValueError("catalog: not an object")
    catalog: dict[JobKey, JobInfo] = {}
    # Most jobs share their contacts with others (a team owns many): each is read once.
    people: dict[tuple[str, str, str], Contact] = {}
    for text, rows in raw.items():
        where = f"catalog[{text[:80]!r}]"
        namespace, group = group_key_of(text)
        if not isinstance(rows, list):
            raise ValueError(f"{where}: not a list")
        for index, row in enumerate(rows):
            try:
                info = _job(namespace, group, row, people)
            except ValueError as exc:
                # The place is named only for an error: 20,000 rows are read every tick.
                raise ValueError(f"{where}[{index}]: {exc}") from None
            catalog[info.job] = info
    return catalog


_PADDING: tuple[list[Any], ...] = (["", 0, None, []], [0, None, []], [None, []], [[]], [])


def _job(
    namespace: str, group: str, row: Any, people: dict[tuple[str, str, str], Contact]
) -> JobInfo:
    """One entry; ValueError naming the field (`decode` adds where the entry is)."""
    # Every tick reads every job's entry (20,000 at the largest estates): the checks are
    # written out rather than looped over.
    if type(row) is not list or not 6 <= len(row) <= 10:
        raise ValueError("not a job entry")
    if len(row) < 10:
        row = row + _PADDING[len(row) - 6]
    job_id, name, enabled, time_type, expression, refreshed, *rest = row
    calendar, timeout_enabled, timeout, contacts = rest
    if type(job_id) is not int or not 0 <= job_id < 2**63:
        raise ValueError("job id")
    if time_type is not None and (type(time_type) is not int or abs(time_type) >= 2**31):
        raise ValueError("time type")
    # JSON gives exact types: `type(...) is` is the check, and keeps True from passing as 1.
    if not (
        type(name) is str
        and len(name) <= MAX_NAME
        and type(expression) is str
        and len(expression) <= MAX_EXPRESSION
        and type(calendar) is str
        and len(calendar) <= MAX_EXPRESSION
    ):
        raise ValueError("text field")
    if type(enabled) is not int or type(timeout_enabled) is not int:
        raise ValueError("flags")
    if not (0 <= enabled <= 1 and 0 <= timeout_enabled <= 1):
        raise ValueError("flags")
    if type(refreshed) not in (int, float) or not (math.isfinite(refreshed) and refreshed >= 0):
        raise ValueError("refreshed_at")
    if timeout is not None and (
        type(timeout) not in (int, float) or not (math.isfinite(timeout) and timeout >= 0)
    ):
        raise ValueError("timeout")
    if type(contacts) is not list or len(contacts) > MAX_CONTACTS:
        raise ValueError("contacts")
    known = []
    for contact in contacts:
        if not isinstance(contact, list) or len(contact) != 3:
            raise ValueError("contact")
        who, phone, user_id = contact
        if not (isinstance(who, str) and isinstance(phone, str) and isinstance(user_id, str)):
            raise ValueError("contact")
        fields = (who, phone, user_id)
        person = people.get(fields)
        if person is None:
            if max(len(who), len(phone), len(user_id)) > MAX_CONTACT_FIELD:
                raise ValueError("contact")
            # Earlier versions took the `Ding` field (a webhook URL with its token) for a
            # user id.
            person = Contact(who, phone, "" if "/" in user_id or "=" in user_id else user_id)
            people[fields] = person
        known.append(person)
    return JobInfo(
        job=JobKey(namespace, group, job_id),
        name=name,
        enabled=enabled == 1,
        time_type=time_type,
        time_expression=expression,
        calendar=calendar,
        timeout_enabled=timeout_enabled == 1,
        timeout_seconds=None if timeout is None else float(timeout),
        contacts=tuple(known),
        refreshed_at=float(refreshed),
    )
