"""Which Secrets the lab can serve from (gwlib.certs.secret_pair) and which names a
certificate covers (gwlib.certs.covers)."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gwlib.certs import covers, secret_pair

NOW = dt.datetime.now(dt.timezone.utc)


def _pair(key, names=("app.example.com",), days=(-1, 30)) -> tuple[bytes, bytes]:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())


def _secret(crt: bytes, key: bytes, encoded: bool = True) -> dict:
    if encoded:
        return {"data": {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()}}
    return {"stringData": {"tls.crt": crt.decode(), "tls.key": key.decode()}}


@pytest.mark.parametrize("case, secret, usable", [
    ("RSA pair in data", _secret(*_pair(RSA)), True),
    ("EC pair in stringData", _secret(*_pair(EC), encoded=False), True),
    ("key of another certificate", _secret(_pair(EC)[0], _pair(OTHER)[1]), False),
    ("RSA certificate with an EC key", _secret(_pair(RSA)[0], _pair(EC)[1]), False),
    ("expired", _secret(*_pair(EC, days=(-30, -1))), False),
    ("not yet valid", _secret(*_pair(EC, days=(1, 30))), False),
    ("certificate is not PEM", _secret(b"not a certificate", _pair(EC)[1]), False),
    ("key is not PEM", _secret(_pair(EC)[0], b"not a key"), False),
    ("data is not base64", {"data": {"tls.crt": "***", "tls.key": "***"}}, False),
    ("empty Secret", {}, False),
])
def test_secret_pair_accepts_only_a_matching_valid_pair(case, secret, usable):
    pair = secret_pair(secret)
    assert (pair is not None) is usable, case
    if usable:
        assert pair[0].startswith(b"-----BEGIN CERTIFICATE") and b"PRIVATE KEY" in pair[1]


@pytest.mark.parametrize("names, host, covered", [
    (["app.example.com"], "app.example.com", True),
    (["app.example.com"], "APP.example.com", True),
    (["app.example.com"], "www.example.com", False),
    (["*.example.com"], "app.example.com", True),
    (["*.example.com"], "a.b.example.com", False),   # a wildcard covers one label
    (["*.example.com"], "example.com", False),
])
def test_covers_matches_sans_with_one_label_wildcards(names, host, covered):
    assert covers(_pair(EC, names=tuple(names))[0], host) is covered
