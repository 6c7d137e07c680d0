"""Benchmark: what the silence book costs a tick, on the loopback OSS.

Prints tables; asserts nothing. `.venv/bin/python -m bench.silence_book`.
"""

from __future__ import annotations

import statistics
import threading
import time

from tests.fakes.oss import FakeOss
from tests.world import AK, SK, STS

from schedulerx_alert.core.silence import Matcher
from schedulerx_alert.storage.silence_book import SilenceBook
from schedulerx_alert.storage.store import OssStateStore
from schedulerx_alert.support.credentials import Credentials

NOW = 1795572000.0
MATCH = Matcher(job_ids=frozenset({92583}), kinds=frozenset({"failed"}))


def book_on(oss: FakeOss, prefix: str) -> SilenceBook:
    store = OssStateStore.connect(
        "alert-bucket", prefix, oss.url, "cn-hangzhou", Credentials(AK, SK, STS)
    )
    return SilenceBook(store, "state.json")


def gets(oss: FakeOss) -> int:
    return sum(1 for r in oss.requests if r.method == "GET")


def read_costs(oss: FakeOss) -> None:
    print(
        "| records since compaction | GETs per read | ms per read | after compaction: GETs | ms |"
    )
    print("|---|---|---|---|---|")
    for pending in (0, 1, 10, 50):
        book = book_on(oss, f"reads-{pending}/")
        for _ in range(pending):
            book.add(MATCH, NOW, NOW + 7200, "bench", "bench", NOW)
        row = [str(pending)]
        for phase in ("before", "after"):
            if phase == "after":
                book.compact(NOW)
            oss.clear_requests()
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                book.read()
                samples.append((time.perf_counter() - started) * 1000)
            row += [str(gets(oss) // 5), f"{statistics.median(samples):.1f}"]
        print("| " + " | ".join(row) + " |")


def concurrent_adds(oss: FakeOss) -> None:
    print()
    print("| people adding at once | all landed | refused creates (409) | ms, slowest add |")
    print("|---|---|---|---|")
    for people in (2, 4, 8):
        book = book_on(oss, f"adds-{people}/")
        start = threading.Barrier(people)
        took: list[float] = []

        def person(
            book: SilenceBook = book, start: threading.Barrier = start, took: list[float] = took
        ) -> None:
            start.wait()
            began = time.perf_counter()
            book.add(MATCH, NOW, NOW + 7200, "bench", "bench", NOW)
            took.append((time.perf_counter() - began) * 1000)

        oss.clear_requests()
        threads = [threading.Thread(target=person) for _ in range(people)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        landed = len(book.read().silences)
        refused = sum(1 for r in oss.requests if r.method == "PUT" and r.status == 409)
        print(f"| {people} | {landed} of {people} | {refused} | {max(took):.0f} |")


def main() -> None:
    with FakeOss(AK, SK, STS, buckets=("alert-bucket",)) as oss:
        read_costs(oss)
        concurrent_adds(oss)


if __name__ == "__main__":
    main()
