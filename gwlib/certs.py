"""TLS for the lab: certificates from Secrets when usable, else from a local CA.

HTTPS and TLS listeners name Secrets in ``certificateRefs``. In a real cluster cert-manager
(or a person) fills them; in the lab the talk's Secret holds a throwaway self-signed
certificate, and many learner manifests hold none at all. So the lab uses a Secret's
``tls.crt``/``tls.key`` when they parse and cover the listener's hostname, and otherwise
issues a certificate for the listener from a local certificate authority that exists only
in the lab's temporary folder and that gwlib's own client trusts.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .processes import atomic_write

_ONE_DAY = dt.timedelta(days=1)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class LocalCA:
    """A certificate authority for one lab (files under ``folder``, the lab's temporary
    folder: written atomically for the proxies that read them, without fsync, since
    nothing there outlives the lab)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gwlib lab CA")])
        now = dt.datetime.now(dt.timezone.utc)
        self._cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                      .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(now - _ONE_DAY).not_valid_after(now + 30 * _ONE_DAY)
                      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                   content_commitment=False, key_encipherment=False,
                                                   data_encipherment=False, key_agreement=False,
                                                   encipher_only=False, decipher_only=False), critical=True)
                      .sign(self._key, hashes.SHA256()))
        self.ca_path = self.folder / "ca.pem"
        atomic_write(self.ca_path, self._cert.public_bytes(serialization.Encoding.PEM), fsync=False)
        self._issued: dict[tuple[str, ...], tuple[str, str]] = {}

    def issue(self, hostnames: list[str], name: str) -> tuple[str, str]:
        """(cert path, key path) of a leaf certificate for ``hostnames`` (wildcards allowed)."""
        names = tuple(sorted(set(hostnames))) or ("localhost",)
        if names in self._issued:
            return self._issued[names]
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for h in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self._cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - _ONE_DAY).not_valid_after(now + 30 * _ONE_DAY)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self._key, hashes.SHA256()))
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in name)
        cert_path, key_path = self.folder / f"{safe}.crt", self.folder / f"{safe}.key"
        atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM)
                     + self._cert.public_bytes(serialization.Encoding.PEM), fsync=False)
        atomic_write(key_path, _key_pem(key), mode=0o600, fsync=False)
        self._issued[names] = (str(cert_path), str(key_path))
        return self._issued[names]


def secret_pair(secret: dict) -> tuple[bytes, bytes] | None:
    """(cert PEM, key PEM) from a ``kubernetes.io/tls`` Secret's JSON, if both parse."""
    data = dict(secret.get("data") or {})
    string_data = secret.get("stringData") or {}
    try:
        crt = string_data.get("tls.crt", "").encode() or base64.b64decode(data.get("tls.crt", ""))
        key = string_data.get("tls.key", "").encode() or base64.b64decode(data.get("tls.key", ""))
        cert = x509.load_pem_x509_certificate(crt)
        # the RSA consistency checks cost tens of milliseconds per key; what makes a pair
        # usable is that the key belongs to the certificate, which is compared below
        private = serialization.load_pem_private_key(key, password=None, unsafe_skip_rsa_key_validation=True)
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if private.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            return None   # a key of another certificate: a TLS server could not use it
    except (ValueError, TypeError, AttributeError):
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    return crt, key


def covers(cert_pem: bytes, hostname: str) -> bool:
    """Whether a certificate's SANs cover ``hostname`` (wildcards by one label)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except (ValueError, x509.ExtensionNotFound):
        return False
    host = hostname.lower()
    for n in names:
        n = n.lower()
        if n == host or (n.startswith("*.") and host.count(".") == n.count(".") and host.endswith(n[1:])):
            return True
    return False
