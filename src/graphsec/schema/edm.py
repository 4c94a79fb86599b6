"""The Edm value formats graphsec reads and writes: integer ranges, DateTimeOffset, Guid."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TICKS_PER_SECOND = 10_000_000

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # \d alone matches any script's digits; int() reads '٢٠٢٤' as 2024
)
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class DateTimeOffset:
    """A parsed DateTimeOffset: UTC text keeping the sent precision, and 100 ns ticks since 1970."""

    text: str
    ticks: int


@lru_cache(maxsize=8192)
def parse_datetime(value: str) -> DateTimeOffset:
    """Parse an ISO 8601 DateTimeOffset with an offset (``Z`` or ``±hh:mm``), at most 7 fraction digits.

    Raises ValueError with a message a person can act on.
    """
    m = _DATETIME.fullmatch(value)
    if m is None:
        raise ValueError(
            f"'{value}' is not a valid Edm.DateTimeOffset; use ISO 8601 with an offset, "
            "e.g. 2024-02-01T00:00:00Z (at most 7 fractional digits)"
        )
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    fraction = m.group(7) or ""
    if m.group(8):
        offset = timedelta(0)
    else:
        sign = -1 if m.group(9) == "-" else 1
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 14 or om > 59:
            raise ValueError(f"'{value}' has an invalid UTC offset")
        offset = sign * timedelta(hours=oh, minutes=om)
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
        utc = local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"'{value}' is not a valid Edm.DateTimeOffset: {exc}") from None
    # formatted by hand: strftime's %Y does not pad years before 1000 on every platform
    text = (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}")
    if fraction:
        text += "." + fraction
    seconds = calendar.timegm(utc.timetuple())
    ticks = seconds * TICKS_PER_SECOND + int(fraction.ljust(7, "0") or 0)
    return DateTimeOffset(text + "Z", ticks)


def now_datetime() -> str:
    """The current time as graphsec stores it: UTC, microsecond precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
