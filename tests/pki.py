"""A throwaway certificate authority and a server certificate, made at test time (never committed).

The server certificate names every address the tests dial: ``localhost``, ``127.0.0.1`` and the
network-namespace address ``198.18.0.1`` (../shared/tools/netns.sh). rustls (the viam-sdk Rust
dialer) is strict: the leaf must not be a CA, must carry its names as subjectAltNames and must be
issued by a CA certificate with basicConstraints CA:true, so the chain is built that way.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "198.18.0.1")
VALIDITY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class ThrowawayPKI:
    ca: Path  #: the CA certificate (PEM): what a client must trust
    cert: Path  #: the server certificate (PEM)
    key: Path  #: the server's private key (PEM, unencrypted)

    def client_context(self, *alpn: str) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA, offering ``alpn`` (none if empty)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_pki(directory: Path) -> ThrowawayPKI:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory``."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("peerbot test CA")).issuer_name(_name("peerbot test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("peerbot test server")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ThrowawayPKI(
        ca=_pem(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        cert=_pem(directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM)),
        key=_pem(directory / "server.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
    )
