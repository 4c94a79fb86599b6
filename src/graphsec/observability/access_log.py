"""The access log: one line per request on the logger ``graphsec.access``, as JSON or text.

A line holds the request's ids (``request-id``, and the ``client-request-id`` the client sent
or, without one, the request-id again), the caller's tenant and application when a token was
verified, the method, the path (without its query string: query values may be data), the entity
set, the status and the duration in milliseconds. Never a header other than those ids, a token,
a secret or a body. A JSON line::

    {"time":"2026-12-02T18:30:00.123Z","request-id":"…","client-request-id":"…",
     "tenant":"1d5a1bd0-…","application":"graphsec-dev","method":"GET",
     "route":"/v1.0/security/secureScores/abc","entity-set":"secureScores","status":200,
     "duration_ms":0.84}

(one line in the log). In the text form every value a client chose has its control characters
escaped, so that no request can forge a line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

import orjson

LOGGER = "graphsec.access"
FORMATS = ("text", "json", "off")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (a server's redirected
    stderr, a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


class _Clock:
    """UTC times to the millisecond, the date and time formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        return f"{self._prefix}{int((now - second) * 1000):03d}Z"


_utc = _Clock()


def _utf8(text: str) -> str:
    """``text`` with the bytes that were not UTF-8 (kept as surrogates) written ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _clean(text: str) -> str:
    """``text`` as :func:`_utf8`, its control characters escaped (``\\n``, ``\\x1b``)."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in _utf8(text))


class AccessLog:
    """Writes one line per request in ``form`` (``json`` or ``text``) to the ``graphsec.access``
    logger, which writes to stderr unless the logging configuration gives it handlers of its
    own.

    While the logger has only the stderr handler put there here, a line goes to stderr
    directly: ``Logger.info`` took 21 µs a line on this machine kind (it looks for the caller's
    frame and names the thread and process), a third of a whole read by id, and the line
    itself 4 µs. Handlers set by a logging configuration get every line as a record.
    """

    def __init__(self, form: str) -> None:
        if form not in ("json", "text"):
            raise ValueError(f"no access log format {form!r}")
        self.json = form == "json"
        self.logger = logging.getLogger(LOGGER)
        if not self.logger.handlers:
            handler = _Stderr()
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)
            self.logger.propagate = False
        self._own = [h for h in self.logger.handlers if isinstance(h, _Stderr)][:1]
        """The stderr handler alone, while it is the logger's only one."""
        if self.logger.level == logging.NOTSET:
            self.logger.setLevel(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        """Log one request's ``fields``: the keys of the module's example after ``time``, in
        that order."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        now = time.time()
        if self.json:
            record = {"time": _utc(now), **fields}
            try:
                line = orjson.dumps(record).decode()
            except orjson.JSONEncodeError:  # a lone surrogate: bytes that were not UTF-8
                line = orjson.dumps({k: _utf8(v) if isinstance(v, str) else v
                                     for k, v in record.items()}).decode()
        else:
            line = self._text(now, fields)
        if logger.handlers == self._own:
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        else:
            logger.handle(logger.makeRecord(logger.name, logging.INFO, "(access)", 0, line,
                                            (), None))

    @staticmethod
    def _text(now: float, f: dict[str, Any]) -> str:
        who = f" tenant={_clean(f['tenant'])} application={_clean(f['application'])}" \
            if f.get("tenant") else ""
        return (f"{_utc(now)} {_clean(f['method'])} {_clean(f['route'])} {f['status']} "
                f"{f['duration_ms']:.2f}ms request-id={f['request-id']} "
                f"client-request-id={_clean(f['client-request-id'])} "
                f"entity-set={f['entity-set']}{who}")
