"""Numbers a command line takes, bounded: a refusal names the flag and the bound, where an
unbounded one would end in inf, NaN or an OverflowError traceback."""

from __future__ import annotations

import argparse
import math

from schedulerx_alert.config.timing import DEPLOYED_TIMEOUT

__all__ = ["DEPLOYED_TIMEOUT", "MAX_TIMEOUT", "timeout_seconds"]
# FC's longest function timeout (fc3 schema: timeout maximum 86400).
MAX_TIMEOUT = 86400.0


def timeout_seconds(text: str) -> float:
    """An argparse type for --timeout: seconds, more than 0 and at most a day."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0 and at most {MAX_TIMEOUT:g} "
            f"(FC's longest timeout), not {text[:40]!r}"
        )
    return value
