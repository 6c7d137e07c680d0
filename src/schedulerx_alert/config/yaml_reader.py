"""Config YAML -> plain values, within bounds a hostile file cannot blow up.

Only what reads a .yaml file imports this (and PyYAML): the function reads the
config.json that `make package` writes, and never loads a YAML parser.
"""

from __future__ import annotations

from typing import Any

import yaml

from schedulerx_alert.config import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_VALUES,
    ConfigError,
    config_text,
)


def read_yaml(data: bytes | str, source: str = "config") -> Any:
    """YAML text -> plain values; every problem a ConfigError naming its line."""
    text = config_text(data, source)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line 1"
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([f"{where}: {_cut(problem)}"], source) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            [f"line {line}: {_cut(exc.reason)} (character #x{exc.character:04x})"], source
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"line 1: invalid YAML ({type(exc).__name__})"], source) from None
    finally:
        if loader is not None:
            loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses alias bombs, deep nesting and giant integers.

    PyYAML shares an aliased node instead of copying it, so the damage of an
    alias bomb comes later, from whatever walks or prints the value. Each node's
    size with its aliases expanded is counted as it is composed, so a bomb is
    refused at its line before any value is built.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}

    def _mark(self) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        return event.start_mark

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self._mark()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _limit(
                    mark, f"too many aliases (YAML alias expansion is limited to {MAX_ALIASES})"
                )
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise _limit(mark, "an alias refers to a value that contains it")
            return node
        mark = self._mark()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _limit(mark, f"values are nested more than {MAX_DEPTH} deep")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = 1
        if node is None:
            return None
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        if size > MAX_VALUES:
            raise _limit(
                mark, f"this value expands to more than {MAX_VALUES} values (aliases counted)"
            )
        self._sizes[id(node)] = size
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's constructors let plain exceptions out for values their tag
        # cannot hold (`!!int x`, `2020-99-99`, `!!bool maybe`); name the line.
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError):
            tag = str(node.tag).rsplit(":", 1)[-1]
            raise _limit(node.start_mark, f"cannot read this value as {_cut(tag, 40)}") from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        # int() of a long decimal raises ValueError (Python's digit limit), and
        # a long hex one builds a number nothing can print; neither is a config value.
        text = str(node.value).replace("_", "")
        if len(text) > 40:
            raise _limit(node.start_mark, "this number is too long")
        value: int = super().construct_yaml_int(node)
        return value


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _limit(mark: Any, problem: str) -> yaml.MarkedYAMLError:
    return yaml.composer.ComposerError(None, None, problem, mark)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
