"""The catalog's reader (20,000 entries a tick at the largest estates) reads each entry
as it reads that entry alone: contacts many jobs share are read once, and an entry out of
shape is refused naming its place, wherever in the list it is."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schedulerx_alert.core import catalog_codec

TEXT = "ns/g"
# Few values, so that entries share contacts, or share all but one field.
fields = st.sampled_from(["Li Lei", "u1", "", "a/b", "x" * 101])
contacts = st.lists(fields, min_size=3, max_size=3) | st.sampled_from(
    [[], ["a", "b"], ["a", "b", 3], ["a", "b", None], ["a", "b", ["c"]], "abc", None]
)
rows = st.builds(
    lambda job_id, name, people: [job_id, name, 1, 1, "0 0 2 * * ?", 1000, "", 1, 60.0, people],
    st.integers(0, 5) | st.just(-1),
    st.sampled_from(["etl", "x" * 201, 7]),
    st.lists(contacts, max_size=3),
)


def read(raw: Any) -> Any:
    try:
        return catalog_codec.decode(json.loads(json.dumps(raw)))
    except ValueError as exc:
        return str(exc)


@settings(deadline=None, max_examples=500)
@given(st.lists(rows, min_size=1, max_size=6))
def test_entries_read_together_read_as_each_read_alone(entries: list[list[Any]]) -> None:
    expected: dict[Any, Any] = {}
    for index, row in enumerate(entries):
        alone = read({TEXT: [row]})
        if isinstance(alone, str):
            # The first entry out of shape, named by its place in the whole list.
            expected = alone.replace(f"[{TEXT!r}][0]", f"[{TEXT!r}][{index}]")  # type: ignore[assignment]
            break
        expected.update(alone)
    assert read({TEXT: entries}) == expected


def test_an_entry_out_of_shape_is_named_by_its_place() -> None:
    good = [1, "etl", 1, 1, "0 0 2 * * ?", 1000, "", 0, None, [["Li Lei", "138", "u1"]]]
    bad = [2, "etl", 1, 1, "0 0 2 * * ?", 1000, "", 0, None, [["Li Lei", "138", 5]]]
    assert read({TEXT: [good, good, bad]}) == "catalog['ns/g'][2]: contact"
    assert read({TEXT: [good, [3, "x"]]}) == "catalog['ns/g'][1]: not a job entry"


def test_contacts_that_differ_in_one_field_are_two() -> None:
    def row(job_id: int, user_id: str) -> list[Any]:
        return [job_id, "etl", 1, 1, "", 1000, "", 0, None, [["Li Lei", "138", user_id]]]

    catalog = read({TEXT: [row(1, "u1"), row(2, "u2"), row(3, "u1")]})
    assert [info.contacts[0].user_id for info in catalog.values()] == ["u1", "u2", "u1"]
