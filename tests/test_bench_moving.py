"""The moving-clock bench's harness runs (issue 22): a smoke run on a tiny estate, so that the
measure the scale work is judged by cannot rot. Its numbers are printed, not asserted."""

from __future__ import annotations

import pytest
from bench import moving


def test_the_moving_clock_bench_runs_a_tiny_estate_and_prints_its_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (outcome,) = moving.main(["--quick"])
    table = capsys.readouterr().out
    assert "| row | GetJobInstanceList per tick mean / min / max |" in table
    assert outcome.case.name in table
    # Every tick ran in its own process and reported its CPU, wall and writes.
    assert len(outcome.cpu) == len(outcome.walls) == len(outcome.written) == outcome.ticks
    assert all(cpu > 0 for cpu in outcome.cpu) and all(w > 0 for w in outcome.written)
    # The estate's injected failures (a bad deploy and long runs among them) were counted,
    # and each reached the chat once.
    assert outcome.counted > 2 and outcome.never == 0 and outcome.duplicated == 0
