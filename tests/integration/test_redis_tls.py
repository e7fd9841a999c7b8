"""The whole stack over TLS to a Redis 7 that asks every client for a certificate and knows one ACL user.

The CA, the server's and the client's certificates are made here (``cryptography``); the server speaks TLS only
(``devtools/redis_ha.py: TlsRedis``); the API, the worker and their broker connections reach it through
``rediss://`` with ``OTP_REDIS__CA_FILE``, ``CERT_FILE``, ``KEY_FILE``, ``USERNAME`` and ``PASSWORD``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devtools.redis_ha import TlsRedis
from tests.support import Api, Stack, quiet_api, random_number, running_stack

pytestmark = pytest.mark.slow

USER, PASSWORD = "otp-dispatcher", "acl-test-password"
USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        usage = dict.fromkeys(USAGES, False) | {"key_cert_sign": True, "crl_sign": True}
        builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    else:
        usage = dict.fromkeys(USAGES, False) | {"digital_signature": True}
        builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> Path:
    (directory / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path = directory / f"{name}.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(directory: Path) -> dict[str, Path]:
    """A self-signed CA and a server and a client certificate it signed: ``ca``, ``server``, ``client`` (PEM,
    each key beside it as ``<name>.key``)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    paths = {"ca": _write(directory, "ca", ca_key, _certificate("test CA", ca_key, "test CA", ca_key, ca=True))}
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        paths[name] = _write(directory, name, key, _certificate(name, key, "test CA", ca_key, ca=False))
    return paths


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    tls = TlsRedis(
        tmp_path_factory.mktemp("tls-redis"),
        pki["server"],
        pki["server"].with_suffix(".key"),
        pki["ca"],
        USER,
        PASSWORD,
    )
    with tls:
        yield tls


@pytest.fixture(scope="module")
def stack(server: TlsRedis, pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = {
        "ca_file": str(pki["ca"]),
        "cert_file": str(pki["client"]),
        "key_file": str(pki["client"].with_suffix(".key")),
        "username": USER,
        "password": PASSWORD,
    }
    with running_stack(server.url, tmp_path_factory.mktemp("tls-logs"), OTP_REDIS=json.dumps(options)) as stack:
        yield stack


@pytest.fixture
async def api(stack: Stack, server: TlsRedis) -> AsyncIterator[Api]:
    client = server.client()
    async with quiet_api(stack, client) as api:
        yield api
    client.close()


async def test_over_tls_with_an_acl_user_an_otp_is_sent_delivered_and_verified(api: Api, server: TlsRedis) -> None:
    # Given the stack on a TLS-only Redis that checks client certificates and has no default user
    recipient = random_number()

    # When an OTP is sent, delivered by the worker (its jobs through the broker over TLS) and verified
    otp_id = await api.send(recipient=recipient)
    report = await api.delivered(otp_id)
    code = (await api.inbox(recipient))["code"]

    # Then it verifies, and its record is in that Redis
    assert report["delivered_by"] == "d7"
    assert await api.verify(otp_id, str(code)) == "APPROVED"
    with server.client() as client:
        assert client.exists(f"otp:{otp_id}")
