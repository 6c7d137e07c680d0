"""records.dataclass makes the same classes as dataclasses.dataclass, more cheaply.

Each layout is defined twice from one class body, once by each decorator (and each
module's `field`), and the two are held against each other: construction, signature,
repr, equality, hashing, ordering, frozenness, `fields`/`replace`, the field values and
`__match_args__`.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import math
import pickle
import pkgutil
import subprocess
import sys
import types
import typing
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schedulerx_alert
from schedulerx_alert import records

MISSING = dataclasses.MISSING
Decorator = Callable[..., Any]

# A field: (default kind, compare, repr, hash, init).
field_spec = st.tuples(
    st.sampled_from(["none", "value", "factory"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, True, False]),
    st.sampled_from([True, True, True, False]),
)
FieldSpec = tuple[str, bool, bool, bool | None, bool]
# Each decorator with its own module's functions.
FIELD: dict[Any, Any] = {dataclasses.dataclass: dataclasses.field, records.dataclass: records.field}
options_spec = st.fixed_dictionaries(
    {
        "frozen": st.booleans(),
        "eq": st.booleans(),
        "repr": st.booleans(),
        "order": st.booleans(),
    }
)
values = st.one_of(
    st.integers(-3, 3),
    st.text(max_size=3),
    st.sampled_from([math.nan, 0.0, -0.0, 1.5]),
    st.lists(st.integers(0, 2), max_size=2),  # unhashable
    st.none(),
)


def make(
    decorator: Decorator,
    fields: list[FieldSpec],
    options: dict[str, bool],
    post_init: bool,
    name: str = "Rec",
) -> Any:
    namespace: dict[str, Any] = {"__annotations__": {}, "__qualname__": name}
    for i, (default, compare, shown, hashed, init) in enumerate(fields):
        namespace["__annotations__"][f"f{i}"] = "Any"
        kwargs: dict[str, Any] = {"compare": compare, "repr": shown, "hash": hashed}
        if not init:
            kwargs["init"] = False
        if default == "value":
            kwargs["default"] = i
        elif default == "factory":
            kwargs["default_factory"] = list
        namespace[f"f{i}"] = FIELD[decorator](**kwargs)
    if post_init:

        def __post_init__(self: Any) -> None:
            # What a validating __post_init__ does: read the fields once they are set.
            self._seen = tuple(getattr(self, f"f{i}", None) for i in range(len(fields)))

        namespace["__post_init__"] = __post_init__
    options = dict(options)
    if options["order"] and not options["eq"]:
        options["order"] = False
    return decorator(**options)(type(name, (), namespace))


def both(
    fields: list[FieldSpec], options: dict[str, bool], post_init: bool
) -> tuple[Any, Any] | None:
    made: list[Any] = []
    decorators: list[Decorator] = [dataclasses.dataclass, records.dataclass]
    for decorator in decorators:
        try:
            made.append(make(decorator, fields, options, post_init))
        except TypeError as exc:
            made.append(exc)
    std, ours = made
    if isinstance(std, TypeError) or isinstance(ours, TypeError):
        assert str(std) == str(ours)
        return None
    return std, ours


def outcome(action: Callable[[], Any]) -> Any:
    try:
        return ("value", action())
    except Exception as exc:
        return ("raised", type(exc).__name__)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(field_spec, max_size=5),
    options=options_spec,
    post_init=st.booleans(),
    args=st.lists(values, max_size=5),
    other=st.lists(values, max_size=5),
)
def test_the_same_class_as_the_standard_decorator(
    fields: list[FieldSpec],
    options: dict[str, bool],
    post_init: bool,
    args: list[Any],
    other: list[Any],
) -> None:
    pair = both(fields, options, post_init)
    if pair is None:
        return
    std: Any = pair[0]
    ours: Any = pair[1]
    assert [(p.name, repr(p.default)) for p in inspect.signature(ours).parameters.values()] == [
        (p.name, repr(p.default)) for p in inspect.signature(std).parameters.values()
    ]
    assert ours.__match_args__ == std.__match_args__
    assert [_field_view(f) for f in records.fields(ours)] == [
        _field_view(f) for f in dataclasses.fields(std)
    ]
    assert (ours.__hash__ is None) == (std.__hash__ is None)

    made = {cls: outcome(partial(cls, *args)) for cls in (std, ours)}
    assert [r[0] for r in made.values()] == [made[std][0]] * 2
    if made[std][0] == "raised":
        assert made[ours] == made[std]
        return
    a_std, a_ours = made[std][1], made[ours][1]
    b_std, b_ours = (outcome(partial(cls, *other)) for cls in (std, ours))
    assert b_std[0] == b_ours[0]

    if options["repr"]:
        assert outcome(lambda: repr(a_ours)) == outcome(lambda: repr(a_std))
    else:
        assert getattr(ours, "__repr__") is getattr(std, "__repr__") is object.__repr__  # noqa: B009
    assert vars(a_ours) == vars(a_std) or _has_nan(a_std)
    if std.__hash__ is object.__hash__:
        assert ours.__hash__ is object.__hash__
    else:
        assert outcome(lambda: hash(a_ours)) == outcome(lambda: hash(a_std))
    assert outcome(lambda: a_ours == a_ours) == outcome(lambda: a_std == a_std)
    assert (a_ours == object()) is False and (a_std == object()) is False
    if b_std[0] == "value":
        b1, b2 = b_std[1], b_ours[1]
        for op in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
            assert outcome(partial(getattr(a_ours, op), b2)) == outcome(
                partial(getattr(a_std, op), b1)
            ), op
        assert outcome(lambda: a_ours < b2) == outcome(lambda: a_std < b1)
    if fields and fields[0][4]:
        assert outcome(lambda: setattr(a_ours, "f0", 9)) == outcome(lambda: setattr(a_std, "f0", 9))
        assert outcome(lambda: delattr(a_ours, "f0")) == outcome(lambda: delattr(a_std, "f0"))
        replaced = [outcome(partial(_replaced, r)) for r in (a_ours, a_std)]
        assert replaced[0] == replaced[1] or _has_nan(a_std)
    assert outcome(lambda: setattr(a_ours, "extra", 1)) == outcome(
        lambda: setattr(a_std, "extra", 1)
    )


def _replaced(record: Any) -> dict[str, Any]:
    replace = records.replace if "__record_fields__" in dir(record) else dataclasses.replace
    return dict(vars(replace(record, f0=7)))


def _field_view(f: Any) -> tuple[Any, ...]:
    missing = (MISSING, records.MISSING)
    return (
        f.name,
        f.type,
        "<missing>" if f.default in missing else f.default,
        "<missing>" if f.default_factory in missing else f.default_factory,
        f.init,
        f.repr,
        f.hash,
        f.compare,
        dict(f.metadata),
    )


def _has_nan(record: Any) -> bool:
    return any(isinstance(v, float) and math.isnan(v) for v in vars(record).values())


def hierarchy(decorator: Any) -> tuple[Any, Any, Any]:
    """A record, a record that extends it, and a plain class that extends that."""

    @decorator(frozen=True)
    class Base:
        """A base record."""

        a: int
        b: str = "x"

    @decorator(frozen=True)
    class Child(Base):
        """Adds a field with a factory."""

        c: list[int] = FIELD[decorator](default_factory=list)

    class Plain(Child):
        """Not a record: may set attributes of its own, not the fields."""

    return Base, Child, Plain


@pytest.mark.parametrize("decorator", [dataclasses.dataclass, records.dataclass])
def test_records_built_on_records_and_their_subclasses(decorator: Any) -> None:
    base, child_cls, plain_cls = hierarchy(decorator)
    child = child_cls(1, "y", [2])
    assert repr(child).endswith("Child(a=1, b='y', c=[2])")
    assert child == child_cls(1, "y", [2]) and child != base(1, "y")
    assert child_cls(1).c == [] and child_cls(1).c is not child_cls(1).c
    plain = plain_cls(1)
    plain.note = "ok"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.a = 2
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen"):
        decorator(type("Thawed", (base,), {"__annotations__": {"d": "int"}, "d": 0}))
    with pytest.raises(TypeError, match="non-default argument 'd' follows default argument"):
        decorator(frozen=True)(type("Broken", (base,), {"__annotations__": {"d": "int"}}))


def refusal(decorator: Any, body: dict[str, Any], bases: tuple[type, ...] = ()) -> str:
    """The error a class body is refused with, as '<type>: <message>'."""
    namespace = {"__annotations__": {}, "__qualname__": "Bad", **body}
    try:
        decorator(frozen=True)(type("Bad", bases, namespace))
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "accepted"


@pytest.mark.parametrize(
    "case",
    ["mutable default", "set default", "field without annotation", "default and factory"],
)
def test_a_bad_class_body_is_refused_as_the_standard_library_refuses_it(case: str) -> None:
    def body(decorator: Any) -> dict[str, Any]:
        make_field = FIELD[decorator]
        if case == "mutable default":
            return {"__annotations__": {"tags": "list[str]"}, "tags": []}
        if case == "set default":
            return {"__annotations__": {"tags": "set[str]"}, "tags": make_field(default=set())}
        if case == "field without annotation":
            return {"__annotations__": {"a": "int"}, "b": make_field(default=1)}
        return {"__annotations__": {"a": "int"}, "a": make_field(default=1, default_factory=int)}

    if case == "default and factory":
        for make_field in FIELD.values():
            with pytest.raises(ValueError, match="cannot specify both default and default_factory"):
                make_field(default=1, default_factory=int)
        return
    std = refusal(dataclasses.dataclass, body(dataclasses.dataclass))
    assert std != "accepted"
    assert refusal(records.dataclass, body(records.dataclass)) == std


def test_what_records_do_not_support_is_refused_by_name() -> None:
    plain = {"__annotations__": {"a": "int"}}
    for option in ("unsafe_hash", "kw_only", "match_args", "weakref_slot"):
        with pytest.raises(TypeError, match=f"does not support {option}"):
            records.dataclass(**{option: True})(type("Odd", (), dict(plain)))
    with pytest.raises(TypeError, match="does not support init"):
        records.dataclass(init=False)(type("Odd", (), dict(plain)))
    for annotation in ("InitVar[int]", "dataclasses.InitVar[str]", "KW_ONLY"):
        with pytest.raises(TypeError, match=r"has no (InitVar|KW_ONLY)"):
            records.dataclass(type("Odd", (), {"__annotations__": {"a": annotation}}))
    with pytest.raises(TypeError, match="no keyword-only fields"):
        records.dataclass(type("Odd", (), {**plain, "a": records.field(kw_only=True)}))

    @dataclasses.dataclass(frozen=True)
    class Standard:
        """A dataclass of the standard library."""

        a: int

    # Its fields are the standard library's, which a record cannot read without it.
    assert "a dataclass of the standard library" in refusal(records.dataclass, {}, (Standard,))


def test_records_are_not_dataclasses_to_the_dataclasses_module() -> None:
    """Said in records.py: the loud failure, not a silent one, for code that forgets it."""

    @records.dataclass(frozen=True)
    class Point:
        """Two numbers."""

        x: int
        y: int = 0
        seen: list[int] = records.field(default_factory=list, init=False, compare=False)

    point = Point(1)
    with pytest.raises(TypeError):
        dataclasses.replace(point, x=2)
    assert not dataclasses.is_dataclass(point)
    assert records.replace(point, y=5) == Point(1, 5) and records.replace(point).seen == []
    with pytest.raises(ValueError, match="init=False, it cannot be specified with replace"):
        records.replace(point, seen=[1])
    with pytest.raises(TypeError, match="record instances"):
        records.replace(object())
    with pytest.raises(TypeError, match="record type or instance"):
        records.fields(object)
    assert [f.name for f in records.fields(point)] == ["x", "y", "seen"]
    assert repr(records.fields(Point)[0]).startswith("Field(name='x',type='int',default=MISSING")


def loaded_after(src: Path, code: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has loaded after running `code` from src/."""
    script = (
        f"import json, sys; sys.path[:0] = [{str(src)!r}]\n{code}\n"
        f"print(json.dumps([m for m in {names!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True
    )
    found: list[str] = json.loads(done.stdout)
    return found


def test_the_package_never_loads_dataclasses() -> None:
    """`dataclasses` brings `inspect`, `ast` and `dis`: 21 M instructions of a cold start."""
    src = Path(schedulerx_alert.__file__).parent.parent
    assert loaded_after(src, "import index", ("dataclasses", "inspect", "ast", "dis")) == []
    every_module = (
        "import importlib, pkgutil, schedulerx_alert\n"
        "for info in pkgutil.walk_packages(schedulerx_alert.__path__, 'schedulerx_alert.'):\n"
        "    importlib.import_module(info.name)"
    )
    assert loaded_after(src, every_module, ("dataclasses",)) == []


def test_annotations_stay_as_written_and_class_variables_are_no_fields() -> None:
    @records.dataclass(frozen=True)
    class Tagged:
        """A record with a class variable beside its fields."""

        kind: ClassVar[str] = "tag"
        name: str
        size: int | None = None

    assert [(f.name, f.type) for f in records.fields(Tagged)] == [
        ("name", "str"),
        ("size", "int | None"),
    ]
    assert Tagged.__annotations__ == {"kind": "ClassVar[str]", "name": "str", "size": "int | None"}
    assert Tagged("a") == Tagged("a", None) and Tagged.kind == "tag"
    assert typing.get_type_hints(Tagged)["size"] == (int | None)


@records.dataclass(frozen=True, slots=True)
class Span:
    """A frozen slotted record pickle can find by name."""

    start: float
    end: float


def test_slots_records_have_slots_and_no_dict() -> None:
    @records.dataclass(frozen=True, slots=True)
    class Point:
        """Two numbers."""

        x: int
        y: int = 0

    point = Point(1)
    assert Point.__slots__ == ("x", "y") and not hasattr(point, "__dict__")
    assert (
        point == Point(1, 0)
        and hash(point) == hash(Point(1, 0))
        and repr(point) == (f"{Point.__qualname__}(x=1, y=0)")
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    # Copied and pickled as the standard library's frozen slotted records are.
    assert copy.copy(point) == point and copy.deepcopy(point) == point
    span = Span(1.0, 2.0)
    assert pickle.loads(pickle.dumps(span)) == span and copy.deepcopy(span) == span


def self_holding_tree(decorator: Any) -> Any:
    @decorator
    class Node:
        """A mutable record that can point at itself."""

        name: str
        children: list[Any]

    make: Any = Node  # a dataclass only to the decorator's eyes
    root = make("root", [])
    root.children.append(root)
    root.children.append(make("leaf", [root]))
    return root


def test_a_record_that_holds_itself_is_shown_as_the_standard_library_shows_it() -> None:
    ours = repr(self_holding_tree(records.dataclass))
    assert ours == repr(self_holding_tree(dataclasses.dataclass))
    node = "self_holding_tree.<locals>.Node"
    assert ours == f"{node}(name='root', children=[..., {node}(name='leaf', children=[...])])"


def test_a_record_that_defines_its_own_methods_keeps_them() -> None:
    @records.dataclass(frozen=True)
    class Named:
        """Compared by name only, shown by name."""

        name: str
        noise: int = 0

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name == self.name

        def __hash__(self) -> int:
            return hash(self.name)

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert Named("a", 1) == Named("a", 2) and hash(Named("a", 1)) == hash("a")
    assert repr(Named("a")) == "<a>"


def test_every_record_of_the_package_is_made_by_records() -> None:
    """The cold start's saving holds only while new records use records.dataclass."""
    found = []
    for info in pkgutil.walk_packages(schedulerx_alert.__path__, "schedulerx_alert."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and ("__record_fields__" in vars(value) or dataclasses.is_dataclass(value))
            ):
                found.append(value)
    assert len(found) > 50
    standard = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in found
        if not hasattr(cls, "__record_frozen__")
    ]
    assert standard == []


# -- __init__ code shipped compiled (make package writes _record_inits.py) ---------------------
def shipped(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `make package` would write, loaded as the package loads it."""
    text = records.precompiled_module()
    namespace: dict[str, Any] = {}
    exec(compile(text, "_record_inits.py", "exec"), namespace)
    monkeypatch.setattr(records, "_precompiled", namespace["INITS"])
    return namespace


def test_every_record_of_the_package_finds_its_init_in_the_shipped_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from schedulerx_alert.core.model import JobKey

    inits = shipped(monkeypatch)["INITS"]
    assert len(inits) > 50
    # The same layout as JobKey, defined again: its code comes from the shipped module...
    twin: Any = records.dataclass(frozen=True)(
        type("JobKey", (), {"__annotations__": dict.fromkeys(("namespace", "group", "job_id"))})
    )
    assert twin.__init__.__code__.co_filename == "_record_inits.py"
    assert twin("ns", "g", 7) == twin("ns", "g", 7) and repr(twin("ns", "g", 7)) == repr(
        JobKey("ns", "g", 7)
    )
    # ...and a record whose code differs by a default is compiled, never served stale code.
    changed: Any = records.dataclass(frozen=True)(
        type(
            "JobKey",
            (),
            {"__annotations__": dict.fromkeys(("namespace", "group", "job_id")), "job_id": 0},
        )
    )
    assert changed.__init__.__code__.co_filename == "<string>"
    assert changed("ns", "g").job_id == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed("ns", "g").job_id = 1


def redefined(cls: Any) -> Any:
    """A frozen record with cls's fields, defaults and __post_init__, defined again."""
    body: dict[str, Any] = {"__annotations__": {}, "__post_init__": cls.__post_init__}
    for f in records.fields(cls):
        body["__annotations__"][f.name] = f.type
        if f.default is not records.MISSING:
            body[f.name] = f.default
        elif f.default_factory is not records.MISSING:
            body[f.name] = records.field(default_factory=f.default_factory)
    return records.dataclass(frozen=True)(type(cls.__name__, (), body))


def test_a_shipped_init_keeps_defaults_factories_and_post_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shipped(monkeypatch)
    from schedulerx_alert.core.rules.settings import RuleSettings
    from schedulerx_alert.urls import HttpUrl, UrlError

    settings_again, url = redefined(RuleSettings), redefined(HttpUrl)
    for cls in (settings_again, url):
        assert cls.__init__.__code__.co_filename == "_record_inits.py", cls
    assert settings_again() == settings_again() and settings_again().flap_changes == 4
    with pytest.raises(ValueError, match="consecutive_failures"):  # __post_init__ still runs
        settings_again(consecutive_failures=0)
    assert url("https", "example.com").path == ""
    with pytest.raises(UrlError):
        url("ftp", "example.com")
    # The same shape with another default value: the shipped code, with this default.
    body: dict[str, Any] = {"__annotations__": {f.name: f.type for f in records.fields(HttpUrl)}}
    body.update({"__post_init__": HttpUrl.__post_init__, "port": None, "path": "/x", "query": ""})
    other: Any = records.dataclass(frozen=True)(type("HttpUrl", (), body))
    assert other.__init__.__code__.co_filename == "_record_inits.py"
    assert other("https", "example.com").path == "/x"


def test_a_shipped_module_serves_only_the_records_py_that_wrote_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = f"schedulerx_alert.{records.PRECOMPILED_MODULE}"
    module = types.ModuleType(name)
    exec(compile(records.precompiled_module(), "_record_inits.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, name, module)
    assert len(records._load_precompiled()) > 50
    # Written by another records.py, whose code for a shape may differ: not used.
    monkeypatch.setattr(module, "WRITTEN_BY", module.WRITTEN_BY ^ 1)
    assert records._load_precompiled() == {}
    # A records.py shipped without its source cannot tell: nothing is used.
    monkeypatch.setattr(module, "WRITTEN_BY", module.WRITTEN_BY ^ 1)
    monkeypatch.setattr(records, "__file__", str(tmp_path / "gone.py"))
    assert records._load_precompiled() == {}
