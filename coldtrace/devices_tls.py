"""A private CA and certificates for the broker's TLS listener, for a plant that has none.

``coldtrace devices ca --host broker.plant.local`` creates, in the broker directory, a CA
(``ca.crt``/``ca.key``) and a server certificate for the given host names and addresses
(``server.crt``/``server.key``), signed by it. Gateways get ``ca.crt`` and verify the
broker's certificate and host name against it; the CA key never leaves the directory
(mode 0600) and signs nothing but these certificates. A plant with its own PKI puts its
own files under the same names instead.

Keys are ECDSA P-256: every TLS stack of the gateways and the broker speaks it, and it
is quick on small edge devices. Built with the ``cryptography`` package rather than the
``openssl`` command line, so it runs the same wherever Python runs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coldtrace.devices import DeviceError
from coldtrace.devices_store import PUBLIC_MODE, SECRET_MODE, write_file

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
CA_DAYS = 3650
LEAF_DAYS = 825  # the longest validity common TLS clients accept for a server certificate


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the CA certificate and the server's certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ColdTrace"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() or c in "/:" for c in host):
                raise DeviceError(f"{host!r} is neither a host name nor an IP address") from None
            names.append(x509.DNSName(host))
    return names


def create_ca(directory: Path, *, common_name: str = "ColdTrace MQTT CA", now: datetime) -> Path:
    """Create ``ca.crt`` and ``ca.key`` in ``directory``; refuse to replace an existing CA."""
    if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
        raise DeviceError(
            f"{directory / CA_CERT} already exists; a new CA would invalidate every gateway's "
            "ca_file (move the old files away first if that is what you want)"
        )
    directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_file(directory / CA_KEY, _key_pem(key), SECRET_MODE)
    write_file(directory / CA_CERT, _cert_pem(cert), PUBLIC_MODE)
    return directory / CA_CERT


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except (OSError, ValueError) as err:
        raise DeviceError(
            f"no usable CA in {directory} ({err}); create one with `coldtrace devices ca`"
        ) from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise DeviceError(f"{directory / CA_KEY} is not an EC key")
    return cert, key


def issue_certificate(  # noqa: PLR0913 - keyword-only, one per certificate field
    directory: Path,
    *,
    common_name: str,
    hosts: list[str],
    server: bool,
    cert_path: Path,
    key_path: Path,
    now: datetime,
) -> Path:
    """Issue a certificate signed by the directory's CA (a server's, or a client's)."""
    ca_cert, ca_key = _load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_alt_names(hosts)), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    write_file(key_path, _key_pem(key), SECRET_MODE)
    write_file(cert_path, _cert_pem(cert), PUBLIC_MODE)
    return cert_path


def issue_server_certificate(directory: Path, hosts: list[str], *, now: datetime) -> TlsFiles:
    """Issue (or replace) the broker's certificate for ``hosts`` (names and IP addresses)."""
    if not hosts:
        raise DeviceError("give at least one --host: the name or address gateways connect to")
    issue_certificate(
        directory,
        common_name=hosts[0],
        hosts=hosts,
        server=True,
        cert_path=directory / SERVER_CERT,
        key_path=directory / SERVER_KEY,
        now=now,
    )
    return tls_files(directory)


def tls_files(directory: Path) -> TlsFiles:
    """Where the TLS files of ``directory`` are (whether or not they exist yet)."""
    return TlsFiles(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)


def ensure_tls(directory: Path, hosts: list[str], *, now: datetime) -> TlsFiles:
    """Create the CA and the server certificate unless they exist; return their paths."""
    files = tls_files(directory)
    if not files.ca_cert.exists():
        create_ca(directory, now=now)
    if not files.server_cert.exists():
        issue_server_certificate(directory, hosts, now=now)
    return files
