"""HTTPS for ``graphsec serve --tls``: a local certificate authority and the server's leaf.

MSAL and azure-identity accept only an ``https`` authority, localhost included
(docs/authentication.md), so the token endpoint needs TLS. Without ``--certfile``, graphsec
makes a CA once in ``GRAPHSEC_HOME/ca/`` (its key mode 0600, refused when group or others may
read it, as the signing key is) and, at each start, a leaf it signs for ``localhost``,
``127.0.0.1``, ``::1``, the bind address and the names links may use. Clients trust the CA
(``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` = ``graphsec ca``). Leaves live in
``GRAPHSEC_HOME/tls/<names digest>/``, made once per set of names and renewed a month before
they expire; every file is written in a folder of its own that is renamed into place, so two
servers starting together never see half a pair.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from graphsec.auth.keys import check_private, secure_home

CA_FOLDER = "ca"
CA_CERT = "graphsec-ca.pem"
CA_KEY = "graphsec-ca-key.pem"
LEAF_CERT = "cert.pem"
LEAF_KEY = "key.pem"
CA_DAYS = 3650
LEAF_DAYS = 397  # the longest a publicly trusted leaf may live; some clients check it
RENEW_DAYS = 30
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalCA:
    """The CA's certificate (and its path, for clients) and private key."""

    path: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def ca_path(home: Path) -> Path:
    """Where the CA certificate is (or will be) kept."""
    return home / CA_FOLDER / CA_CERT


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_folder(final: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Create ``final`` holding ``files`` (name → content, mode) at once: written in a
    temporary folder beside it, renamed into place; a concurrent creator's folder wins."""
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        for name, (data, mode) in files.items():
            fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            tmp.rename(final)
        except OSError:
            if not final.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_or_create_ca(home: Path) -> LocalCA:
    """The local CA of ``home``, created on first use (key 0600); raises
    :class:`graphsec.auth.keys.UnsafeKeyFile` for a key group or others may read."""
    secure_home(home)
    folder = home / CA_FOLDER
    if not (folder / CA_CERT).exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphsec"),
            x509.NameAttribute(NameOID.COMMON_NAME,
                               f"graphsec local CA {os.urandom(4).hex()}"),
        ])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        now = _now()
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_folder(folder, {
            CA_CERT: (cert.public_bytes(serialization.Encoding.PEM), 0o644),
            CA_KEY: (_pem_key(key), 0o600),
        })
    check_private(folder / CA_KEY, "the key signs the certificates clients trust")
    loaded = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{folder / CA_KEY} does not hold the CA's EC private key")
    cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    return LocalCA(folder / CA_CERT, cert, loaded)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def server_names(*extra: str | None) -> list[str]:
    """The names a leaf is made for: the loopback names and ``extra`` (bind address, allowed
    hosts, public URL host), without brackets, wildcard addresses or duplicates."""
    out: list[str] = []
    for raw in (*LOOPBACK, *extra):
        name = (raw or "").strip().lower().strip("[]")
        if name and name not in ("0.0.0.0", "::") and name not in out:  # noqa: S104
            out.append(name)
    return out


def leaf_files(home: Path, names: list[str]) -> tuple[Path, Path]:
    """The certificate and key files of a leaf for ``names`` signed by ``home``'s CA, made
    when there is none yet for these names or it expires within :data:`RENEW_DAYS`."""
    ca = load_or_create_ca(home)
    digest = hashlib.sha256("\n".join([ca.certificate.fingerprint(hashes.SHA256()).hex(),
                                       *names]).encode()).hexdigest()[:16]
    folder = home / "tls" / digest
    cert_path, key_path = folder / LEAF_CERT, folder / LEAF_KEY
    if cert_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if current.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_DAYS):
            check_private(key_path, "the key is the server's TLS identity")
            return cert_path, key_path
        shutil.rmtree(folder, ignore_errors=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    _write_folder(folder, {
        LEAF_CERT: (cert.public_bytes(serialization.Encoding.PEM), 0o644),
        LEAF_KEY: (_pem_key(key), 0o600),
    })
    return cert_path, key_path
