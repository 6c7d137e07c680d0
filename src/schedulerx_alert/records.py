"""`dataclass` for the package's records, cheaper to define than the standard one.

Before 3.13, CPython's `dataclasses` compiles every method it generates with its own
`exec` while the class is being defined: six for a frozen record (`__init__`, `__repr__`,
`__eq__`, `__hash__`, `__setattr__`, `__delattr__`), plus `inspect.signature` for its
docstring when it has none. A cold start of the function defines some seventy records
before its first tick, and those compilations were the largest part of `import index`
(about 1.2 ms a record on FC's python3.10, 0.55x of `import requests` in all).

Here only `__init__` is generated, with the code the standard library writes for it
(same signature, same defaults and factories, `__post_init__`, the frozen
`object.__setattr__` assignment), so creating a record costs what it did. The other methods
are closures over the class's field names: they compare, hash and print exactly as the
generated ones do (tests/test_records.py holds each against the standard library).

Compiling even that one `__init__` costs about 1.7 M instructions a record. `make package`
therefore ships them compiled: it writes the `__init__` of every record the package
defines into `_record_inits.py` (see `precompiled_module`), which FC loads as bytecode like
any module, keyed by the record's shape (field names, which have defaults or factories,
frozen, `__post_init__`): all its code depends on. A record whose shape is found there
takes that code and compiles nothing; anything else, such as a run from src/, compiles as
before. The module names the records.py that wrote it, and no other records.py uses it.

Nor does a record import `dataclasses`: with the `inspect`, `ast` and `dis` it loads, that
module was 21 M instructions of `import index` (on 3.10; `import requests` is 514 M), and
its field processing another 12 M. The fields are collected here by the standard
library's rules (ClassVar is no field, a mutable default is refused, a subclass's field
replaces its base's in place), and `field`, `fields` and `replace` come from this module.
Records are therefore not dataclasses to the `dataclasses` module at run time
(`dataclasses.replace(record)` raises TypeError); tests/test_records.py keeps the package
from importing it.

mypy sees the standard `dataclass`, `field`, `fields` and `replace`, so every check it
makes of a frozen dataclass still applies. Options no record uses (`init=False`,
`unsafe_hash`, `kw_only`, `match_args`, InitVar fields) are refused with a TypeError.
"""

from __future__ import annotations

import importlib
import types
import zlib
from _thread import get_ident
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, get_origin


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from dataclasses import fields as fields
    from dataclasses import replace as replace
else:

    def dataclass(cls=None, /, **options):
        """`dataclasses.dataclass`: same options, same classes, fewer compilations."""

        def wrap(cls):
            return _record(cls, **options)

        return wrap if cls is None else wrap(cls)

    def field(
        *,
        default=MISSING,
        default_factory=MISSING,
        init=True,
        repr=True,
        hash=None,
        compare=True,
        metadata=None,
        kw_only=MISSING,
    ):
        """`dataclasses.field`, for records."""
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        f = Field("", None, default)
        f.default_factory = default_factory
        f.init = init
        f.repr = repr
        f.hash = hash
        f.compare = compare
        if metadata is not None:
            f.metadata = types.MappingProxyType(metadata)
        f.kw_only = kw_only
        return f

    def fields(class_or_instance):
        """`dataclasses.fields`, for records: the fields in __init__ order."""
        try:
            found = class_or_instance.__record_fields__
        except AttributeError:
            raise TypeError("must be called with a record type or instance") from None
        return tuple(found.values())

    def replace(obj, /, **changes):
        """`dataclasses.replace`, for records: a copy with some fields changed."""
        if not hasattr(type(obj), "__record_fields__"):
            raise TypeError("replace() should be called on record instances")
        for f in type(obj).__record_fields__.values():
            if not f.init:
                if f.name in changes:
                    raise ValueError(
                        f"field {f.name} is declared with init=False, "
                        "it cannot be specified with replace()"
                    )
            elif f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return obj.__class__(**changes)


# A factory default stands in the signature as this marker, as in the standard library.
_HAS_FACTORY = type("_HAS_DEFAULT_FACTORY", (), {"__repr__": lambda self: "<factory>"})()
PRECOMPILED_MODULE = "_record_inits"


class Field:
    """One field of a record: the attributes of `dataclasses.Field`, as its users read them.

    Most fields are a bare annotation with or without a default: such a field sets its
    name, type and default, and reads every other option from these class defaults."""

    default_factory: Any = MISSING
    init = True
    repr = True
    hash: bool | None = None
    compare = True
    metadata: types.MappingProxyType[Any, Any] = types.MappingProxyType({})
    kw_only: Any = MISSING

    def __init__(self, name: str, type: Any, default: Any) -> None:
        self.name = name
        self.type = type
        self.default = default

    def __repr__(self) -> str:
        shown = ",".join(f"{name}={getattr(self, name)!r}" for name in _FIELD_REPR)
        return f"Field({shown})"


_FIELD_REPR = (
    "name",
    "type",
    "default",
    "default_factory",
    "init",
    "repr",
    "hash",
    "compare",
    "metadata",
    "kw_only",
)


def _frozen_error(message: str) -> AttributeError:
    # The standard library's error, so code written for dataclasses catches it. Records
    # never import `dataclasses` (21 M instructions with what it loads); raising here is
    # a bug's path, where loading it costs nothing.
    import dataclasses

    error: AttributeError = dataclasses.FrozenInstanceError(message)
    return error


def _records_crc() -> int | None:
    try:
        with open(__file__, "rb") as source:
            return zlib.crc32(source.read())
    except OSError:  # shipped without its source: nothing to tell a stale module by
        return None


def _load_precompiled() -> dict[tuple[Any, ...], Callable[..., Callable[..., None]]]:
    try:
        module = importlib.import_module(f"{__package__}.{PRECOMPILED_MODULE}")
    except ModuleNotFoundError:
        return {}
    written_by = _records_crc()
    if written_by is None or written_by != module.WRITTEN_BY:
        return {}
    found: dict[tuple[Any, ...], Callable[..., Callable[..., None]]] = module.INITS
    return found


_precompiled = _load_precompiled()


def _record(
    cls: type,
    *,
    init: bool = True,
    repr: bool = True,  # shadows repr() in here, as the standard library's option does
    eq: bool = True,
    order: bool = False,
    frozen: bool = False,
    slots: bool = False,
    **rare: Any,
) -> type:
    if not init:
        rare["init"] = init
    if rare:
        # No record here uses them (init=False, unsafe_hash, kw_only, match_args, ...);
        # one that needs them would need them built and tested here first.
        raise TypeError(
            f"{cls.__qualname__}: records.dataclass does not support {', '.join(sorted(rare))}"
        )
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__qualname__}: use slots=True, not __slots__ of its own")
    if order and not eq:
        raise ValueError("eq must be true if order is true")
    if frozen or _frozen_bases(cls):
        _check_frozen_bases(cls, frozen)
    own = {name for name in ("__eq__", "__hash__", "__repr__") if name in cls.__dict__}
    explicit_hash = "__hash__" in cls.__dict__ and not (
        cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__
    )
    found = _process(cls)
    all_fields = tuple(found.values())
    # Every list the methods need, in one pass: a record costs per field, at every start.
    shown, compared, hashed, params = [], [], [], []
    for f in all_fields:
        if f.kw_only is True or f.name == "self":
            raise TypeError(f"{cls.__qualname__}: records.dataclass has no keyword-only fields")
        if f.repr:
            shown.append(f.name)
        if f.compare:
            compared.append(f.name)
        if f.compare if f.hash is None else f.hash:
            hashed.append(f.name)
        if f.init:
            params.append(f.name)
    if slots:
        cls = _with_slots(cls, all_fields, frozen)
    cls.__record_fields__ = found  # type: ignore[attr-defined]
    cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
    if "__match_args__" not in cls.__dict__:
        cls.__match_args__ = tuple(params)  # type: ignore[attr-defined,misc]
    _set(cls, "__init__", _init(cls, all_fields, frozen))
    if not getattr(cls, "__doc__", None):
        cls.__doc__ = f"{cls.__name__}{_signature(all_fields)}"
    if repr and "__repr__" not in own:
        _set(cls, "__repr__", _repr(shown))
    if eq and "__eq__" not in own:
        _set(cls, "__eq__", _eq(compared))
    if order:
        for name, fn in _order(compared).items():
            if name in cls.__dict__:
                raise TypeError(
                    f"Cannot overwrite attribute {name} in class {cls.__name__}. "
                    "Consider using functools.total_ordering"
                )
            _set(cls, name, fn)
    if eq and not explicit_hash:
        # The standard library's rule: eq and frozen hash the compared fields; eq alone
        # makes the record unhashable.
        if frozen:
            _set(cls, "__hash__", _hash(hashed))
        else:
            cls.__hash__ = None  # type: ignore[assignment]
    if frozen:
        for name, fn in _frozen(cls, frozenset(found)).items():
            if name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            _set(cls, name, fn)
    return cls


def _process(cls: type) -> dict[str, Field]:
    """The fields of `cls`, its bases' first, as the standard library collects them.

    Its rules, kept: an annotation makes a field unless it is a ClassVar; a default is the
    class attribute or a `field()`; a mutable (unhashable) default is refused; a `field()`
    without an annotation is refused; a subclass's field replaces the base's in place."""
    found: dict[str, Field] = {}
    for base in cls.__mro__[-1:0:-1]:
        base_fields = base.__dict__.get("__record_fields__")
        if base_fields is not None:
            found.update(base_fields)
        elif "__dataclass_fields__" in base.__dict__:
            raise TypeError(
                f"{cls.__qualname__}: a record cannot extend {base.__qualname__}, "
                "a dataclass of the standard library"
            )
    own = cls.__dict__
    # As the standard library reads them (3.10): the class's own, not inherited ones.
    annotations: dict[str, Any] = own.get("__annotations__", {})
    for name, annotation in annotations.items():
        # Most annotations are plain strings: the cheap test first.
        if not isinstance(annotation, str) or "Var" in annotation or "KW_ONLY" in annotation:
            kind = _kind(annotation)
            if kind == "ClassVar":
                found.pop(name, None)
                continue
            if kind:
                raise TypeError(f"{cls.__qualname__}.{name}: records.dataclass has no {kind}")
        default = own.get(name, MISSING)
        if isinstance(default, Field):
            f = default
            f.name, f.type = name, annotation
        else:
            f = Field(name, annotation, default)
        if f.default is not MISSING and type(f.default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(f.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        if isinstance(default, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        found[name] = f
    for name, value in own.items():
        if isinstance(value, Field) and name not in annotations:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    return found


def _kind(annotation: Any) -> str:
    """ "ClassVar", "InitVar" or "KW_ONLY" when the annotation names one, else ""."""
    if isinstance(annotation, str):
        # `ClassVar[int]`, `typing.ClassVar`, `dataclasses.InitVar[str]`: the name before
        # any subscript, after any module prefix, as the standard library's pattern reads.
        name = annotation.split("[", 1)[0].rsplit(".", 1)[-1].strip()
    elif annotation is ClassVar or get_origin(annotation) is ClassVar:
        return "ClassVar"
    else:
        # The class InitVar, an InitVar[...] or the KW_ONLY marker (a _KW_ONLY_TYPE).
        name = getattr(annotation, "__name__", type(annotation).__name__)
    return _KINDS.get(name, "")


_KINDS = {
    "ClassVar": "ClassVar",
    "InitVar": "InitVar",
    "KW_ONLY": "KW_ONLY",
    "_KW_ONLY_TYPE": "KW_ONLY",
}


def _frozen_bases(cls: type) -> bool:
    return any(getattr(base, "__record_frozen__", False) for base in cls.__mro__[1:])


def _check_frozen_bases(cls: type, frozen: bool) -> None:
    for base in cls.__mro__[1:]:
        base_frozen = base.__dict__.get("__record_frozen__")
        if base_frozen is None:
            continue
        if base_frozen and not frozen:
            raise TypeError("cannot inherit non-frozen dataclass from a frozen one")
        if frozen and not base_frozen:
            raise TypeError("cannot inherit frozen dataclass from a non-frozen one")


def _set(cls: type, name: str, fn: Callable[..., Any]) -> None:
    # Named as the standard library's generated methods are, for tracebacks and repr.
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, fn)


def _with_slots(cls: type, fields: tuple[Field, ...], frozen: bool) -> type:
    # As the standard library does it: a new class, the fields as its slots, their
    # defaults kept in the Field objects (a class attribute would clash with a slot).
    names = tuple(f.name for f in fields)
    body = dict(cls.__dict__)
    for name in names:
        body.pop(name, None)
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    body["__slots__"] = names
    qualname = getattr(cls, "__qualname__", None)
    new = type(cls)(cls.__name__, cls.__bases__, body)
    if qualname is not None:
        new.__qualname__ = qualname
    if frozen:
        # Copying and pickling restore a frozen slotted record through these, as the
        # standard library's do: no __dict__ to fill, and __setattr__ refuses.
        new.__getstate__ = _slots_getstate  # type: ignore[attr-defined]
        new.__setstate__ = _slots_setstate  # type: ignore[attr-defined]
    return new


def _slots_getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in type(self).__record_fields__.values()]


def _slots_setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(type(self).__record_fields__.values(), state, strict=True):
        object.__setattr__(self, f.name, value)


def _signature(fields: tuple[Field, ...]) -> str:
    """`(a, b=2, c=<factory>)`: the docstring of a record that has none."""
    shown = []
    for f in fields:
        if f.default is not MISSING:
            shown.append(f"{f.name}={f.default!r}")
        elif f.default_factory is not MISSING:
            shown.append(f"{f.name}=<factory>")
        else:
            shown.append(f.name)
    return f"({', '.join(shown)})"


# A field's default, as the shape of a record's __init__ records it.
_NONE, _VALUE, _FACTORY = 0, 1, 2


def _init(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    shape = _shape(cls, fields, frozen)
    create = _precompiled.get(shape)
    if create is None:
        namespace: dict[str, Any] = {}
        source = _init_source(shape)
        exec(source, {"__builtins__": __builtins__}, namespace)  # noqa: S102 - our own source
        create = namespace["__create__"]
    scope: dict[str, Any] = {"__object_setattr": object.__setattr__, "__HAS_FACTORY": _HAS_FACTORY}
    for f in fields:
        if f.default is not MISSING:
            scope[f"__dflt_{f.name}"] = f.default
        elif f.default_factory is not MISSING:
            scope[f"__dflt_{f.name}"] = f.default_factory
    init_fn: Callable[..., None] = create(**scope)
    return init_fn


def _shape(cls: type, fields: tuple[Field, ...], frozen: bool) -> tuple[Any, ...]:
    """All that the code of `cls`'s __init__ depends on (the values of defaults are
    handed in, not written in): the key of its compiled code."""
    return (
        frozen,
        hasattr(cls, "__post_init__"),
        "__slots__" in cls.__dict__,
        tuple(
            [  # a list comprehension runs faster than a generator on 3.10
                (
                    f.name,
                    _VALUE
                    if f.default is not MISSING
                    else _FACTORY
                    if f.default_factory is not MISSING
                    else _NONE,
                    f.init,
                )
                for f in fields
            ]
        ),
    )


def _init_source(shape: tuple[Any, ...]) -> str:
    """The source of a factory that makes an __init__ of this shape from the defaults."""
    frozen, post_init, slotted, fields = shape
    params = ["self"]
    body = []
    names = ["__object_setattr", "__HAS_FACTORY"]
    defaulted = False
    for name, default, init in fields:
        if default != _NONE:
            names.append(f"__dflt_{name}")
        if not init:
            # Not a parameter: a factory's value is set here; a default is the class
            # attribute, which a slotted class no longer has, so there it is set too.
            if default == _VALUE and slotted:
                value = f"__dflt_{name}"
            elif default == _FACTORY:
                value = f"__dflt_{name}()"
            else:
                continue
        elif default == _VALUE:
            params.append(f"{name}=__dflt_{name}")
            value = name
            defaulted = True
        elif default == _FACTORY:
            params.append(f"{name}=__HAS_FACTORY")
            value = f"__dflt_{name}() if {name} is __HAS_FACTORY else {name}"
            defaulted = True
        else:
            if defaulted:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            params.append(name)
            value = name
        if frozen:
            body.append(f"__object_setattr(self, {name!r}, {value})")
        else:
            body.append(f"self.{name} = {value}")
    if post_init:
        body.append("self.__post_init__()")
    lines = "\n".join(f"  {line}" for line in body or ["pass"])
    return (
        f"def __create__({', '.join(names)}):\n"
        f" def __init__({', '.join(params)}):\n{lines}\n return __init__"
    )


def precompiled_module() -> str:
    """The text of `_record_inits.py`: the __init__ of every record the package defines.

    Imports every module of the package (a build step, never at run time) and derives
    each module-level record's code from its fields, as `_init` does, keyed by the
    record's shape. The module names the records.py it was written by (its CRC-32): any
    other records.py, whose code for a shape might differ, loads none of it, so a stale
    file costs compilations, never behaviour.
    """
    import pkgutil

    package = importlib.import_module(__package__)
    shapes: dict[tuple[Any, ...], None] = {}  # in order, each once
    for info in pkgutil.walk_packages(package.__path__, f"{__package__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            own = vars(value) if isinstance(value, type) else {}
            frozen = own.get("__record_frozen__")  # set on each record, inherited by others
            if frozen is not None and value.__module__ == info.name:
                shapes[_shape(value, tuple(value.__record_fields__.values()), frozen)] = None
    parts = [
        '"""Generated by `make package` (schedulerx_alert.records.precompiled_module): the\n'
        '__init__ of every record, compiled with the package. Do not edit."""\n',
        f"WRITTEN_BY = {_records_crc()!r}  # CRC-32 of the records.py that wrote it\n",
    ]
    keys = []
    for number, shape in enumerate(shapes):
        source = _init_source(shape)
        parts.append(source.replace("def __create__(", f"def _init_{number}(", 1) + "\n")
        keys.append(f"    {shape!r}: _init_{number},")
    parts.append("INITS = {\n" + "\n".join(keys) + "\n}\n")
    return "\n\n".join(parts)


def _key(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    # Always a tuple, as the generated methods compare and hash one.
    if not names:
        return lambda self: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda self: (one(self),)
    many: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    return many


def _eq(names: list[str]) -> Callable[[Any, Any], Any]:
    key = _key(names)

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    return __eq__


def _hash(names: list[str]) -> Callable[[Any], int]:
    key = _key(names)

    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


def _repr(names: list[str]) -> Callable[[Any], str]:
    # reprlib.recursive_repr's guard, without its wrapper to build for every record.
    running: set[tuple[int, int]] = set()

    def __repr__(self: Any) -> str:
        key = id(self), get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        finally:
            running.discard(key)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _order(names: list[str]) -> dict[str, Callable[[Any, Any], Any]]:
    key = _key(names)

    def __lt__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) < key(other)
        return NotImplemented

    def __le__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) <= key(other)
        return NotImplemented

    def __gt__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) > key(other)
        return NotImplemented

    def __ge__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) >= key(other)
        return NotImplemented

    return {"__lt__": __lt__, "__le__": __le__, "__gt__": __gt__, "__ge__": __ge__}


def _frozen(cls: type, names: frozenset[str]) -> dict[str, Callable[..., None]]:
    # Subclasses that are not records may still set attributes of their own, as with
    # the generated guards.
    owner: Any = cls

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)

    return {"__setattr__": __setattr__, "__delattr__": __delattr__}
