"""JobKey is a tuple so that hashing and comparing it run in C (a 20,000-job tick hashes
keys about 400,000 times); it must still equal, order and hash as the frozen, ordered
dataclass it was."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from schedulerx_alert.core.model import JobKey


@dataclass(frozen=True, order=True)
class _Reference:
    """What JobKey was: equal and ordered by (namespace, group, job_id)."""

    namespace: str
    group: str
    job_id: int


# Few distinct values, so that equal parts (the same group, the same id) are common.
_parts = st.tuples(
    st.sampled_from(["", "ns", "ns-prod", "ns/2", "Ns"]),
    st.sampled_from(["", "g", "g.a", "G", "g/b", "组"]),
    st.integers(-3, 3) | st.sampled_from([2**63 - 1, -(2**63)]),
)


@given(_parts, _parts)
def test_keys_equal_and_order_as_the_dataclass_did(
    a: tuple[str, str, int], b: tuple[str, str, int]
) -> None:
    ka, kb, ra, rb = JobKey(*a), JobKey(*b), _Reference(*a), _Reference(*b)
    assert (ka == kb, ka != kb) == (ra == rb, ra != rb)
    assert (ka < kb, ka <= kb, ka > kb, ka >= kb) == (ra < rb, ra <= rb, ra > rb, ra >= rb)
    if ka == kb:
        assert hash(ka) == hash(kb)
    assert str(ka) == f"{a[0]}/{a[1]}/{a[2]}"
    assert JobKey.decode(ka.encode()) == ka


@given(st.lists(_parts, max_size=30))
def test_keys_sort_and_dedupe_as_the_dataclass_did(parts: list[tuple[str, str, int]]) -> None:
    keys = sorted({JobKey(*p) for p in parts})
    reference = sorted({_Reference(*p) for p in parts})
    assert [(k.namespace, k.group, k.job_id) for k in keys] == [
        (r.namespace, r.group, r.job_id) for r in reference
    ]


def test_hashing_and_comparing_run_in_c() -> None:
    # A Python-level __hash__ or __eq__ (a dataclass's) is a function call per dict probe.
    assert JobKey.__hash__ is tuple.__hash__
    assert JobKey.__eq__ is tuple.__eq__
    assert JobKey.__lt__ is tuple.__lt__
