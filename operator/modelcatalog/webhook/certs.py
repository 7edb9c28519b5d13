"""The webhook's serving certificate: a private CA and a leaf it signs, kept in one Secret, reused while valid."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 3650
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class ServingCert:
    ca: bytes  # PEM: what the API server trusts (the configuration's caBundle)
    cert: bytes  # PEM: the leaf the webhook serves
    key: bytes  # PEM: the leaf's private key

    def secret_data(self) -> dict[str, str]:
        return {k: base64.b64encode(v).decode() for k, v in (("ca.crt", self.ca), ("tls.crt", self.cert),
                                                                  ("tls.key", self.key))}  # fmt: skip

    @classmethod
    def from_secret_data(cls, data: dict[str, str]) -> ServingCert | None:
        try:
            return cls(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")))
        except (KeyError, ValueError, TypeError):
            return None


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def generate(hosts: list[str], now: datetime | None = None) -> ServingCert:
    """A CA and a serving certificate for `hosts` (DNS names or IP addresses), both valid VALID_DAYS."""
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    end = start + timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("modelcatalog-webhook-ca")
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ServingCert(ca.public_bytes(pem), leaf.public_bytes(pem), key_pem)


def usable(cert: ServingCert, hosts: list[str], now: datetime | None = None) -> bool:
    """The stored certificate covers every host and is not within RENEW_BEFORE_DAYS of expiry."""
    try:
        leaf = x509.load_pem_x509_certificate(cert.cert)
        serialization.load_pem_private_key(cert.key, password=None)
        x509.load_pem_x509_certificate(cert.ca)
    except ValueError:
        return False
    moment = now or datetime.now(UTC)
    if leaf.not_valid_after_utc - timedelta(days=RENEW_BEFORE_DAYS) < moment:
        return False
    try:
        covered = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(n.value) for n in covered}
    return all(str(ipaddress.ip_address(h)) in have if _is_ip(h) else h in have for h in hosts)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
