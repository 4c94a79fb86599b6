"""The address ``graphsec serve`` listens on must be its own.

granian's workers each bind the port with ``SO_REUSEPORT``, which lets any other socket that
sets it too share the port: a second graphsec started on the same port (from another folder,
with other data and another signing key) would start, and the kernel would split connections
between the two. :func:`check_free` binds a plain socket first, without ``SO_REUSEPORT``: that
bind fails when anyone holds the port, with or without it, so the second server stops before
it starts, with one line.
"""

from __future__ import annotations

import errno
import socket


class AddressInUse(OSError):
    """The address cannot be listened on; the message is one line that says what to do."""


def in_use_message(host: str, port: int) -> str:
    return (f"port {port} on {host} is already in use (by another graphsec or another "
            f"program); stop it, or choose another --port")


def check_free(host: str, port: int) -> None:
    """Raise :class:`AddressInUse` unless a socket could listen on ``host``:``port`` now.

    ``SO_REUSEADDR`` is set so that connections a server stopped a moment ago left in
    ``TIME_WAIT`` do not count; on Linux it never lets a socket share a port that another one
    listens on."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise AddressInUse(f"cannot listen on {host}: {exc.strerror}; check --host") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise AddressInUse(bind_failure(exc, host, port)) from None


def bind_failure(exc: BaseException, host: str, port: int) -> str:
    """The one line for a failure to listen on ``host``:``port`` (an :class:`OSError`, or
    granian's ``RuntimeError`` whose text carries the OS error and, with ``RUST_BACKTRACE``
    set, a Rust backtrace after it)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "in use" in first or getattr(exc, "errno", None) == errno.EADDRINUSE:
        return in_use_message(host, port)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else first
    return f"cannot listen on {host}:{port}: {reason}; check --host and --port"


def is_bind_failure(exc: BaseException) -> bool:
    """Whether granian's start failed because its socket could not be bound (its text names
    the OS error, e.g. ``Address already in use (os error 98)``)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return "(os error " in first and any(
        word in first for word in ("in use", "assign", "denied", "not permitted", "Invalid"))
