"""The development issuer's RSA key pair, kept in ``GRAPHSEC_HOME`` with owner-only permissions.

The key signs every token this server accepts, so, as ssh does with a private key, graphsec
refuses to load one that group or others may read or write (:class:`UnsafeKeyFile`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "signing-key.pem"


class UnsafeKeyFile(PermissionError):
    """The signing key can be read (or written) by group or others; the message, one line, says
    how to fix it."""


@dataclass(frozen=True)
class SigningKey:
    """An RSA private key with its key id (an RFC 7638-style thumbprint)."""

    private: rsa.RSAPrivateKey
    kid: str

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def derive_secret(self, purpose: str) -> bytes:
        """A secret for ``purpose`` (e.g. skiptoken signing) shared by every process of this home."""
        der = self.private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return hashlib.sha256(purpose.encode() + b"\0" + der).digest()


def _kid(key: rsa.RSAPrivateKey) -> str:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    digest = hashlib.sha256(numbers.e.to_bytes(3, "big") + n).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()[:22]


def secure_home(home: Path) -> bool:
    """Make ``home`` a folder only its owner may enter: created with mode 0700, or, when it
    exists with group or other permissions (a 0755 folder made by hand, or by an older
    graphsec), changed to 0700. True when an existing folder was tightened (the CLI says so).
    A folder owned by another user is left as it is."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = home.stat()
    if not info.st_mode & 0o077 or info.st_uid != os.geteuid():
        return False
    home.chmod(0o700)
    return True


def check_private(path: Path, what: str = "the key signs every token") -> None:
    """Raise :class:`UnsafeKeyFile` when group or others may read or write ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UnsafeKeyFile(
            f"permissions {mode:04o} for {path} are too open: {what}, so only "
            f"its owner may read it; run: chmod 600 {path}"
        )


_check_private = check_private


def load_or_create(home: Path) -> SigningKey:
    """Load ``home/signing-key.pem``, creating the key (mode 0600) on first use; ``home`` is
    made owner-only first (:func:`secure_home`). Raises :class:`UnsafeKeyFile` for a key file
    that group or others may read or write."""
    secure_home(home)
    path = home / KEY_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            os.link(tmp, path)  # atomic; loses cleanly to a concurrent creator
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    _check_private(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return SigningKey(loaded, _kid(loaded))
