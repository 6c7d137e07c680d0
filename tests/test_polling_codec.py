"""The group cursors' codec (core/polling.encode, decode): what a state holds comes back
the same, and a malformed row is refused by where it is and what it should hold."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from schedulerx_alert.core.polling import (
    GroupCursor,
    Query,
    SourceState,
    Span,
    decode,
    encode,
    group_key_text,
)

GROUP = ("ns", "g")
CURSOR = GroupCursor(
    spans=(Span(10.0, 70.0, (Query(None, True), Query(4, False)), 2, True, 40.0),),
    ancient=((2**63 - 1, 5, 30.0),),
    unfinished=((7, 8, -(2**31), 20.0, None, 2**31 - 1), (7, 9, 3, None, 25.0, None)),
)


def test_a_cursor_comes_back_as_it_went() -> None:
    state = SourceState(groups={GROUP: CURSOR})
    assert decode(json.loads(json.dumps(encode(state)))) == state


@pytest.mark.parametrize(
    ("field", "row", "refused"),
    [
        ("ancient", [1, 2], "].ancient[]: not [job id, instance id, schedule time]"),
        ("ancient", [-1, 2, 3.0], "].ancient[]: not a whole number in [0, 9223372036854775807]"),
        (
            "unfinished",
            [1, 2, 3, 4.0, 5.0],
            "].unfinished[]: not [job id, instance id, status, schedule, start, trigger]",
        ),
        ("unfinished", [1, 2, 2**31, None, None, None], "not a whole number in [-2147483648,"),
        ("unfinished", [1, 2, 3, None, None, -(2**31) - 1], "not a whole number in [-2147483648,"),
        ("spans", [1.0, 2.0, [[None]], 1, 0], "].spans[].queries[]: not [status, windowed]"),
        ("spans", [1.0, 2.0, [[2**31, 1]], 1, 0], "not a whole number in [-2147483648,"),
    ],
)
def test_a_malformed_row_is_refused_by_name(field: str, row: list[Any], refused: str) -> None:
    raw = encode(SourceState(groups={GROUP: CURSOR}))
    raw["groups"][group_key_text(GROUP)][field] = [row]
    with pytest.raises(ValueError, match=re.escape(refused)):
        decode(raw)
