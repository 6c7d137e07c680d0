"""Random and hostile configs: only ConfigError escapes, every message names a path,
no message repeats a secret, and none is longer than a line should be."""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedulerx_alert.config import ConfigError, parse_config, read_yaml
from tests.test_config import GOOD

# Secrets as the environment gives them; long and odd enough never to occur by chance.
TOKEN = "tok-Zq9v7Lr2Xw4Kd8Np"
ROBOT_SECRET = "SECzQ4mW8pV2nX6kR9tY"
HIDDEN = "env-Hj3Bc7Qm1Ws5Fu9G"
LITERAL_TOKEN = "lit-Wd2Rk8Ps5Nv3Jq7M"
ENV = {"DT_TOKEN": TOKEN, "DT_SECRET": ROBOT_SECRET, "HIDDEN": HIDDEN, "EMPTY": ""}
SECRETS = (TOKEN, ROBOT_SECRET, HIDDEN, LITERAL_TOKEN)

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_QUOTED = r"""\[(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")…?\]|\[[^\]'"]*\]"""
_SEGMENT = rf"(?:\.{_NAME}|{_QUOTED}|\[\d+\])"
PATH = re.compile(
    rf"(?:\(top level\)|line \d+(?:, column \d+)?|(?:{_NAME}|{_QUOTED}){_SEGMENT}*): \S"
)


def check(problems: list[str]) -> None:
    assert problems
    for problem in problems:
        assert PATH.match(problem), problem
        assert len(problem) < 400, problem
        assert "\n" not in problem, problem
        for secret in SECRETS:
            assert secret not in problem, problem


def parse(raw: Any) -> None:
    """Parse; a Config or a ConfigError are the only outcomes (anything else propagates)."""
    try:
        parse_config(raw, ENV)
    except ConfigError as exc:
        check(exc.problems)


def parse_text(text: str) -> None:
    try:
        raw = read_yaml(text)
    except ConfigError as exc:
        check(exc.problems)
        return
    parse(raw)


# -- any text --------------------------------------------------------------------------------

_YAML_CHARS = st.sampled_from(list("ab:-[]{},&*!|>'\"#%@`?\n\t ${}0.9xé\\\x00\x85\ufeff"))


@settings(deadline=None)
@given(st.text(alphabet=_YAML_CHARS, max_size=80))
def test_any_text_is_read_as_a_config_or_refused_with_paths(text: str) -> None:
    parse_text(text)


_YAML_TOKENS = st.sampled_from(
    [
        "a: ",
        "- ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "&x ",
        "*x",
        "<<: ",
        "? ",
        "!!int ",
        "!!float ",
        "!!bool ",
        "!!timestamp ",
        "!!binary ",
        "!!set ",
        "!!omap ",
        "!!str ",
        "!!null ",
        "!!python/name:os.system ",
        "!custom ",
        "2020-99-99",
        "0x",
        "0o9",
        "1:2:3",
        "1e999",
        ".nan",
        "~",
        "'",
        '"',
        "|\n",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "${HIDDEN}",
        "region",
        "watch",
        "receivers",
        "jobs",
        "9" * 30,
    ]
)


@settings(deadline=None)
@given(st.lists(_YAML_TOKENS, max_size=30).map("".join))
def test_any_sequence_of_yaml_tokens_is_refused_with_paths(text: str) -> None:
    parse_text(text)


@settings(deadline=None)
@given(
    at=st.integers(min_value=0, max_value=len(GOOD)),
    cut=st.integers(min_value=0, max_value=40),
    insert=st.text(alphabet=_YAML_CHARS, max_size=20),
)
def test_a_damaged_config_is_refused_with_paths(at: int, cut: int, insert: str) -> None:
    parse_text(GOOD[:at] + insert + GOOD[at + cut :])


@settings(deadline=None)
@given(
    levels=st.integers(min_value=1, max_value=12),
    fanout=st.integers(min_value=1, max_value=12),
    where=st.sampled_from(["jobs", "receivers", "alert_on", "namespace", "at_mobiles"]),
)
def test_anchors_and_aliases_never_blow_up(levels: int, fanout: int, where: str) -> None:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * fanout)}]")
    target = f"*l{levels - 1}"
    text = GOOD.replace("receivers:\n", "\n".join(lines) + "\nreceivers:\n", 1)
    if where == "at_mobiles":
        text = text.replace("at_mobiles: []", f"at_mobiles: {target}")
    else:
        text = text.replace(f"    {where}:", f"    {where}: {target}\n    old_{where}:", 1)
    parse_text(text)


# -- hostile values anywhere in the documented shape -------------------------------------------

_STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "${HIDDEN}",
            "x${HIDDEN}y",
            "${MISSING}",
            "${EMPTY}",
            "https://${HIDDEN}/robot/send?access_token=${DT_TOKEN}",
            "https://${HIDDEN}@oapi.dingtalk.com/robot/send?access_token=${DT_TOKEN}",
            "oss://My_Bucket/${HIDDEN}",
            "file:///${HIDDEN}",
            "running",
            "ops",
            "-1",
            "1e400",
            "nan",
        ]
    ),
    st.text(min_size=200, max_size=2000),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**4000),
    st.floats(),
    _STRINGS,
    st.dates(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_STRINGS, st.integers(), st.none()), inner, max_size=4),
    ),
    max_leaves=12,
)


# What a secret field may hold literally: the file is not meant to, but a message
# must not repeat it even then.
_WEBHOOKS = st.sampled_from(
    [
        f"https://evil:443\\@oapi.dingtalk.com/robot/send?access_token={LITERAL_TOKEN}",
        f"https://{LITERAL_TOKEN}@oapi.dingtalk.com/robot/send?access_token=x",
        f"https://oapi.dingtalk.com:{LITERAL_TOKEN}/robot/send?access_token=x",
        f"http://127.0.0.1:1/robot/send?access_token={LITERAL_TOKEN}",
        f"https://oapi.dingtalk.com/robot/send?access_token={LITERAL_TOKEN}&sign=1",
        f"https://oapi.dingtalk.com/robot/send?access_token={LITERAL_TOKEN}#x",
        f"https://oapi.dingtalk.com/robot/send?access_token={LITERAL_TOKEN}\n",
        f"https://{LITERAL_TOKEN}.example.com/robot/send?access_token=x",
        f"{LITERAL_TOKEN}",
        "https://oapi.dingtalk.com/robot/send?access_token=${HIDDEN}",
    ]
)
_SECRET_FIELDS = st.sampled_from(
    [LITERAL_TOKEN, f"SEC{LITERAL_TOKEN}", "${HIDDEN}", "${DT_SECRET}"]
)


def _locations(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the documented shape a value could be put (or a key added)."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _locations(item, (*here, key))
        found.append((*here, "new_key"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _locations(item, (*here, index))
        found.append((*here, len(value)))
    return found


BASE = read_yaml(GOOD.replace("tok-0123456789abcdef", LITERAL_TOKEN))
LOCATIONS = _locations(BASE)[1:]


def _put(raw: Any, where: tuple[Any, ...], value: Any) -> None:
    for step in where[:-1]:
        raw = raw[step]
    last = where[-1]
    if isinstance(raw, list) and last == len(raw):
        raw.append(value)
    else:
        raw[last] = value


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(LOCATIONS), _VALUES),
        min_size=1,
        max_size=4,
    ),
    webhook=st.none() | _WEBHOOKS,
    secret=st.none() | _SECRET_FIELDS,
)
def test_hostile_values_anywhere_are_refused_with_paths_and_no_secret(
    changes: list[tuple[tuple[Any, ...], Any]], webhook: str | None, secret: str | None
) -> None:
    raw = copy.deepcopy(BASE)
    if webhook is not None:
        raw["receivers"][0]["webhook"] = webhook
    if secret is not None:
        raw["receivers"][0]["secret"] = secret
    for where, value in changes:
        try:
            _put(raw, where, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced the container
    parse(raw)


@settings(deadline=None)
@given(value=_VALUES)
def test_any_top_level_value_is_refused_with_a_path(value: Any) -> None:
    parse(value)
