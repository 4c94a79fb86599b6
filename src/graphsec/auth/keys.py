"""The development issuer's RSA key pair, kept in ``GRAPHSEC_HOME`` with owner-only permissions."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "signing-key.pem"


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


def load_or_create(home: Path) -> SigningKey:
    """Load ``home/signing-key.pem``, creating the key (mode 0600, folder 0700) on first use."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return SigningKey(loaded, _kid(loaded))
