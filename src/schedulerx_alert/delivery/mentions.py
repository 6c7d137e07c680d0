"""Who a message @-mentions: the receiver's own `at_mobiles` and `at_user_ids`, and the
SchedulerX contacts of the jobs it is about (`mention_owners`).

Mentions come only from the config and from the job catalog (what SchedulerX says about a
job's alarm contacts), never from a job's text: delivery/neutralise.py turns every "@" in job text
into a full-width "＠", which DingTalk does not read as a mention. A contact's number is
checked before it is used; a malformed one is left out with a note, and the alert goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schedulerx_alert.core.evidence import MAX_OWNERS
from schedulerx_alert.core.state import Alert

if TYPE_CHECKING:
    from schedulerx_alert.core.catalog import Contact

#: Owners one message mentions besides the receiver's own: a summary of many jobs names
#: the owners of its first alerts, not a page of phone numbers.
MAX_MESSAGE_OWNERS = 10
# A mainland China mobile, with or without +86 / 86 and separators.
_CN_MOBILE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})")
# Any other: a country code and a number, as the config's at_mobiles may write it.
_INTERNATIONAL = re.compile(r"\+[1-9][0-9]{0,3}-?[0-9]{4,14}")
_SEPARATORS = re.compile(r"[\s()]|-(?=[0-9])")


@dataclass(frozen=True)
class Mentions:
    mobiles: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()


def mobile(text: str) -> str | None:
    """A contact's phone as DingTalk's atMobiles takes it, or None when it is not a mobile."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    compact = text.strip()
    china = _CN_MOBILE.fullmatch(_SEPARATORS.sub("", compact))
    if china:
        return china.group(1)
    if _INTERNATIONAL.fullmatch(compact.replace(" ", "")):
        return compact.replace(" ", "")
    return None


def owners_of(contacts: Sequence[Contact], where: str) -> tuple[tuple[str, ...], list[str]]:
    """The mobiles to mention for a job's contacts, and a note for each one left out.

    A note names the contact by its position and name, never by the number it has."""
    owners: list[str] = []
    notes: list[str] = []
    for index, contact in enumerate(contacts):
        if not contact.phone:
            continue
        number = mobile(contact.phone)
        if number is None:
            who = f" ({contact.name[:40]!r})" if contact.name else ""
            notes.append(
                f"{where}: contact {index}{who} has a UserPhone that is not a mobile number; "
                "not mentioned"
            )
        elif number not in owners:
            owners.append(number)
    if len(owners) > MAX_OWNERS:
        notes.append(f"{where}: {len(owners)} contacts, the first {MAX_OWNERS} are mentioned")
    return tuple(owners[:MAX_OWNERS]), notes


def mentions(mobiles: Sequence[str], user_ids: Sequence[str], alerts: Iterable[Alert]) -> Mentions:
    """A message's mentions: the receiver's own, then the owners of its alerts, in order,
    at most MAX_MESSAGE_OWNERS of them."""
    own = tuple(mobiles)
    owners = dict.fromkeys(o for alert in alerts for o in alert.evidence.owners if o not in own)
    return Mentions((*own, *list(owners)[:MAX_MESSAGE_OWNERS]), tuple(user_ids))
