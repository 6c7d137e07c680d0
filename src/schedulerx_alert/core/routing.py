"""Who hears of a finding, and whether it is held back: routes, silences, quiet hours.

`Policy` is what `diff.route` asks, per finding: the receivers (the watch entry's,
then `routes:`, see route.py) and, per receiver, the holder that keeps it back now (the
longest active silence that matches, else the receiver's quiet hours unless its kind,
its job or a named route that sent it there still pages). Pure: the silences are read
by the caller (delivery/held_digests.py's `SilenceView`) and `now` is given.
`schedulerx-alert routes --job` asks the same `resolve` as `receivers_for`, and
`routes --workflow` asks `workflow_receivers`, so the command and the tick cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schedulerx_alert.core.findings import Finding
from schedulerx_alert.core.model import JobKey, TriggerType
from schedulerx_alert.core.route import Route, resolve, routes_to
from schedulerx_alert.core.silence import QuietHours, Silence, Subject, in_quiet_hours, silenced_by
from schedulerx_alert.core.silence_hold import QUIET, HeldAlert, holder_of

_TRIGGERS = {int(t): t.name.lower() for t in TriggerType}

# A job the finding is about, as its watch entry names it: key, configured name, receivers.
Owner = tuple[JobKey, str | None, Sequence[str]]


def subject_of(found: Finding, job: JobKey, name: str | None) -> Subject:
    """A finding about `job` as silences and routes see it."""
    trigger = None
    if found.instances and found.instances[0].trigger_type is not None:
        trigger = _TRIGGERS.get(found.instances[0].trigger_type)
    return Subject(job.namespace, job.group, job.job_id, name, found.kind, trigger)


def receivers_for(
    subject: Subject, watch_receivers: Sequence[str], routes: Sequence[Route]
) -> list[str]:
    """The receivers of one job's finding: its watch entry's, then the routes'."""
    return [name for name, _ in resolve(subject, [(0, watch_receivers)], routes)]


def workflow_receivers(
    subject: Subject, index: int, entry_receivers: Sequence[str], routes: Sequence[Route]
) -> list[tuple[str, str]]:
    """(receiver, reason) for a workflow's finding, in the order `receivers_for` gives
    them: its `workflows[index]` entry's receivers, then the routes'."""
    chosen = dict.fromkeys(entry_receivers, f"workflows[{index}]")
    for name, reason in resolve(subject, [], routes):
        chosen.setdefault(name, reason)
    return list(chosen.items())


@dataclass(frozen=True)
class Policy:
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)

    @property
    def route_receivers(self) -> frozenset[str]:
        """Receivers only routes may name: their pending alerts are still configured."""
        return frozenset(r for route in self.routes for r in route.receivers)

    def receivers(self, found: Finding, owners: Sequence[Owner]) -> list[str]:
        chosen: dict[str, None] = {}
        for job, name, watch in owners:
            chosen.update(
                dict.fromkeys(receivers_for(subject_of(found, job, name), watch, self.routes))
            )
        return list(chosen)

    def hold(
        self, found: Finding, owners: Sequence[Owner], receiver: str, now: float
    ) -> HeldAlert | None:
        """Why this receiver does not hear of it now, or None when it does.

        A finding of several jobs (none reach here today: shared causes are grouped
        after routing) is held only when its first job is."""
        if not owners:
            return None
        job, name, _ = owners[0]
        subject = subject_of(found, job, name)
        silence = silenced_by(subject, self.silences, now)
        if silence is not None:
            holder = holder_of(silence)
        elif in_quiet_hours(
            self.quiet_hours.get(receiver),
            now,
            found.kind,
            subject,
            routes_to(subject, receiver, self.routes),
        ):
            holder = QUIET
        else:
            return None
        run = found.instances[0].instance_id if found.instances else None
        return HeldAlert(receiver, holder, job, name or "", found.kind, now, run, found.fingerprint)
