"""The operator key: the credential of the admin API (``/_graphsec/``) and of ``/metrics``.

It is not a token: a random secret kept in ``GRAPHSEC_HOME/operator.key`` (mode 0600, created on
first use), sent as ``Authorization: Bearer <key>`` and compared in constant time. A tenant's
token never opens the admin API, whatever its roles.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from graphsec.auth.keys import check_private, secure_home

OPERATOR_KEY_FILE = "operator.key"


def load_or_create_operator_key(home: Path) -> str:
    """The operator key of ``home``, created (mode 0600) on first use; ``home`` is made
    owner-only first. Raises :class:`graphsec.auth.keys.UnsafeKeyFile` for a file that group or
    others may read or write."""
    secure_home(home)
    path = home / OPERATOR_KEY_FILE
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)  # atomic; loses cleanly to a concurrent creator
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    check_private(path, "the key opens the admin API")
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no operator key; delete it to have a new one made")
    return key


def is_operator(authorization: str | None, key: str) -> bool:
    """Whether an ``Authorization`` header carries ``key`` as its bearer credential (constant
    time in the key)."""
    if not authorization:
        return False
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credential.strip().encode(), key.encode())
