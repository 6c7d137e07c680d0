"""Log lines: JSON objects for FC (and so SLS), readable text on a terminal; all redacted.

In FC every line is one JSON object whose keys SLS can index: `time`, `level`,
`request_id`, `event`, and for the tick summary its fields (`status`, `jobs`, ...).
On a terminal the same records are short readable lines. Which one is chosen by an
explicit signal, never by guessing: `--log-format` on the command line, else
`SCHEDULERX_ALERT_LOG_FORMAT=json|text`, else JSON inside the FC handler (or wherever
FC's `FC_FUNCTION_NAME` is set), else text.

Every line that leaves the process goes through the current `Redactor`: log records
(message, traceback, stack) of any logger, logging's own error reports, warnings, an
exception that escapes the FC handler, and one that escapes the process.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, TextIO

from schedulerx_alert.support.redact import Redactor

FORMAT_ENV = "SCHEDULERX_ALERT_LOG_FORMAT"
FORMATS = ("json", "text")
# FC sets this in every function's environment (FACTS.md); nothing else does.
FC_ENV = "FC_FUNCTION_NAME"
# `extra=` key of a record whose fields become top-level JSON keys.
FIELDS = "fields"

log = logging.getLogger("schedulerx_alert")


class _State:
    """What this process decided about its log lines; one FC instance runs one
    invocation at a time, so a module-level state is the invocation's."""

    redactor: Redactor = Redactor()
    chosen: str | None = None  # from the command line
    in_fc_handler: bool = False
    request_id: str | None = None


_state = _State()


def choose_format(value: str | None) -> None:
    """The command line's choice (None: decide as the module docstring says)."""
    if value is not None and value not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {value!r}")
    _state.chosen = value


def log_format(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if _state.chosen:
        return _state.chosen
    override = env.get(FORMAT_ENV, "").strip().lower()
    if override in FORMATS:
        return override
    return "json" if in_fc(env) else "text"


def in_fc(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return _state.in_fc_handler or bool(env.get(FC_ENV))


def fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """`extra=` for a record whose values are its JSON line's top-level keys."""
    return {FIELDS: dict(values)}


# -- formatters ------------------------------------------------------------------------------


def _scrub(value: Any, redactor: Redactor) -> Any:
    """Redact every string inside a JSON-able value before it is encoded, so a secret
    that JSON would escape (a quote, a backslash) is still found."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, Mapping):
        return {str(k): _scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, redactor) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redactor(str(value))


class _RedactingFormatter(logging.Formatter):
    """A formatter whose every output line is redacted, tracebacks included."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(self.render(record))

    def render(self, record: logging.LogRecord) -> str:
        return super().format(record)


class JsonFormatter(_RedactingFormatter):
    """One JSON object per record, on one line (a traceback is a string value)."""

    def render(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
        }
        if _state.request_id:
            out["request_id"] = _state.request_id
        values = getattr(record, FIELDS, None)
        values = values if isinstance(values, Mapping) else {}
        out["event"] = str(values.get("event") or "log")
        out["message"] = _message(record)
        for key, value in values.items():
            out.setdefault(str(key), value)
        if not record.name.startswith(log.name):
            out["logger"] = record.name
        exc_text = _exc_text(record, self)
        if exc_text:
            out["exception"] = exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(_scrub(out, self.redactor), ensure_ascii=False, default=str)


class TextFormatter(_RedactingFormatter):
    """`10:00:01 WARNING job ...`: for people at a terminal."""

    def render(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        values = getattr(record, FIELDS, None)
        text = _message(record)
        if isinstance(values, Mapping):
            text = _readable(text, values)
        if not record.name.startswith(log.name):
            text = f"{record.name}: {text}"
        line = f"{clock} {record.levelname:<7} {text}"
        exc_text = _exc_text(record, self)
        if exc_text:
            line += "\n" + exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


class _Wrapped(_RedactingFormatter):
    """Someone else's formatter (a test harness's), with its output redacted."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__(redactor)
        self.inner = inner

    def render(self, record: logging.LogRecord) -> str:
        return self.inner.format(record)


def _iso_time(created: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{stamp}.{int(created * 1000) % 1000:03d}Z"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as exc:
        return f"{record.msg!s} (unformattable log arguments: {type(exc).__name__})"


def _exc_text(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or ""


def _readable(message: str, values: Mapping[str, Any]) -> str:
    """`tick: status=degraded jobs=3 polled=2 ...`, leaving out what is empty."""
    parts = []
    for key, value in values.items():
        if key in ("event", "message") or value in (None, "", [], {}):
            continue
        shown = value if isinstance(value, str | int | float) else json.dumps(value, default=str)
        parts.append(f"{key}={shown}")
    return f"{message}: {' '.join(parts)}" if parts else message


# -- handlers and hooks ----------------------------------------------------------------------


class LineHandler(logging.Handler):
    """Writes each line to stderr, looked up at each write (a runtime or a test may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own report prints the record's message and arguments as given.
        kind, exc, _ = sys.exc_info()
        name = kind.__name__ if kind else "error"
        text = f"--- log line lost ({name}: {exc}) from {record.name}:{record.lineno}\n"
        with suppress(Exception):  # nowhere left to report to
            sys.stderr.write(_state.redactor(text))


def install(redactor: Redactor, env: Mapping[str, str] | None = None) -> None:
    """Route every log record through `redactor` and the chosen format; idempotent."""
    _state.redactor = redactor
    fmt = log_format(env)
    formatter: _RedactingFormatter = (
        JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor)
    )
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(LineHandler())
    for handler in root.handlers:
        current = handler.formatter
        if isinstance(handler, LineHandler) or fmt == "json":
            # In FC the product owns the line format: one JSON object per line,
            # also for a handler the runtime installed (its prefix would break it).
            handler.setFormatter(formatter)
        else:
            inner = current.inner if isinstance(current, _Wrapped) else current
            handler.setFormatter(_Wrapped(inner or logging.Formatter(), redactor))
    # Handler filters see records propagated from every logger; logger filters
    # only their own. Our own logger gets one too, for handlers added later.
    for target in (log, *root.handlers):
        for old in [f for f in target.filters if isinstance(f, Redactor)]:
            target.removeFilter(old)
        target.addFilter(redactor)
    log.setLevel(logging.INFO)
    log.propagate = True
    # urllib3 logs request lines, and a webhook's request line carries its token.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    _install_excepthooks()
    env = os.environ if env is None else env
    override = env.get(FORMAT_ENV, "").strip()
    if override and override.lower() not in FORMATS:
        log.warning("%s=%r is neither json nor text: writing %s", FORMAT_ENV, override, fmt)


def _write_exception(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(kind, exc, tb))
    sys.stderr.write(_state.redactor(text))
    sys.stderr.flush()


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    sys.stderr.write(f"Exception in thread {name}:\n")
    _write_exception(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)


def _install_excepthooks() -> None:
    # An exception that leaves the process (a command-line run, a thread).
    sys.excepthook = _write_exception
    threading.excepthook = _thread_excepthook


# -- the FC invocation -----------------------------------------------------------------------


class RedactedError(RuntimeError):
    """Stands in for an exception whose text or traceback held a secret."""


@contextmanager
def invocation(context: Any) -> Iterator[None]:
    """One FC invocation: JSON lines tagged with its request id, and no exception
    leaving the handler with a secret in what FC prints (message and traceback)."""
    before = (_state.in_fc_handler, _state.request_id)
    _state.in_fc_handler = True
    _state.request_id = str(getattr(context, "request_id", "") or "") or None
    try:
        yield
    except Exception as exc:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        redactor = _state.redactor
        log.error(
            "the handler raised %s: %s",
            type(exc).__name__,
            exc,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra=fields({"event": "handler_error", "error_type": type(exc).__name__}),
        )
        if redactor(text) == text:
            raise
        # FC prints the exception it catches, chained causes and all: the
        # original must not leave. Its type and redacted message still do.
        summary = redactor(f"{type(exc).__name__}: {exc}")
        raise RedactedError(summary) from None
    finally:
        _state.in_fc_handler, _state.request_id = before


# -- progress --------------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]


def no_progress(what: str, done: int, total: int) -> None:
    """The progress hook where nobody watches (FC, a pipe, a log file)."""


def progress_reporter(
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    every: float = 0.2,
) -> Progress:
    """A hook that rewrites one status line (`polled 400/1000 jobs`) on a terminal,
    at most every `every` seconds, and the last one always; a no-op in FC or when
    stderr is not a terminal."""
    out = sys.stderr if stream is None else stream
    if in_fc(env) or not _isatty(out):
        return no_progress
    last = [-every]

    def report(what: str, done: int, total: int) -> None:
        finished = done >= total
        now = clock()
        if not finished and now - last[0] < every:
            return
        last[0] = now
        out.write(f"\r{what} {done}/{total}" + ("\n" if finished else ""))
        out.flush()

    return report


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
