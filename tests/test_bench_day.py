"""The day bench's harness runs (issue 22): a smoke run on a tiny estate, so that the
measure of the state over a day cannot rot. Its numbers are printed, not asserted."""

from __future__ import annotations

import pytest
from bench import day


def test_the_day_bench_runs_a_tiny_estate_and_prints_its_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    day.main(["--jobs", "300", "--hours", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("|   jobs |   hour |   records |")
    rows = [line.split("|")[1:-1] for line in lines[2:]]
    assert [row[1].strip() for row in rows] == ["0 h", "1 h"]
    # An hour of runs was listed, diffed and kept as records.
    assert int(rows[1][2].replace(",", "")) > int(rows[0][2].replace(",", "")) > 0
