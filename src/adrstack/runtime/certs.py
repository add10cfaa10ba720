"""A development PKI for OpenADR 2.0b: one CA, the VTN's ECC and RSA certificates, VEN certificates.

``ensure_certs(dir, ven_names, host_names)`` creates what is missing in ``dir`` and reuses what is
there (nothing is ever overwritten):

  ca.crt, ca.key              ECC P-256 CA (basicConstraints CA:true, keyUsage keyCertSign/cRLSign)
  vtn-ecc.crt, vtn-ecc.key    ECC P-256, for TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
  vtn-rsa.crt, vtn-rsa.key    RSA 2048, for TLS_RSA_WITH_AES_128_CBC_SHA256
  NAME.crt, NAME.key          ECC P-256 VEN certificate (clientAuth) per VEN name

The VTN certificates carry serverAuth and clientAuth and name ``localhost``, ``127.0.0.1`` and the
requested host names in their subject alternative names. When they already exist without a newly
requested host name they are kept as they are and the names are reported in
``CertSet.missing_host_names``: reissuing would change the VTN's fingerprint under VENs that pinned
it. Removing vtn-ecc.* and vtn-rsa.* has them reissued (same CA) on the next call.

A VEN's identity is the 2.0b fingerprint of its certificate
(:func:`adrstack.shared.identity.fingerprint_of_der`). Keys are PEM PKCS#8, unencrypted, mode 0600;
a directory this module creates is mode 0700. Writes are atomic (temp file + rename) and
serialized by a lock file, so two processes running this at once do not mix their keys.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adrstack.shared.identity import fingerprint_of_der

CA = "ca"
VTN_ECC = "vtn-ecc"
VTN_RSA = "vtn-rsa"
RESERVED_NAMES = frozenset({CA, VTN_ECC, VTN_RSA})
DEFAULT_HOST_NAMES = ("localhost", "127.0.0.1")

RSA_BITS = 2048
CA_DAYS = 3650
LEAF_DAYS = 730
BACKDATE = dt.timedelta(minutes=5)  # tolerate a little clock skew between the machines

# A VEN name is a file name here and a certificate common name (at most 64 characters).
_VEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Names Windows will not create files under, whatever the extension.
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))})
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class CertsError(Exception):
    """Something the caller must fix (a bad name, a half-present or foreign pair); one-line text."""


@dataclass(frozen=True)
class Pair:
    """A certificate and its key on disk."""

    cert: Path
    key: Path
    fingerprint: str  # 2.0b form: last 10 bytes of the SHA-256 of the DER, AB:CD:...
    created: bool  # made by this call (False: it was there and is reused)


@dataclass(frozen=True)
class CertSet:
    dir: Path
    ca: Pair
    vtn_ecc: Pair
    vtn_rsa: Pair
    vens: dict[str, Pair] = field(default_factory=dict)  # in the order asked for
    host_names: tuple[str, ...] = ()  # the names in the VTN certificates (as found on disk)
    missing_host_names: tuple[str, ...] = ()  # asked for but not in an existing VTN certificate

    @property
    def pairs(self) -> list[Pair]:
        return [self.ca, self.vtn_ecc, self.vtn_rsa, *self.vens.values()]

    @property
    def created(self) -> list[Path]:
        return [p for pair in self.pairs if pair.created for p in (pair.cert, pair.key)]


# --------------------------------------------------------------------------- names


def check_ven_name(name: str) -> str:
    """``name`` if it can be a VEN certificate's file name and common name, else CertsError."""
    if not isinstance(name, str) or not _VEN_NAME.fullmatch(name):
        raise CertsError(f"VEN name {name!r} is not a safe file name: use 1 to 64 letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit (no path separators)")
    if name.lower() in RESERVED_NAMES:
        raise CertsError(f"VEN name {name!r} is taken by the CA and VTN files ({', '.join(sorted(RESERVED_NAMES))})")
    if name.split(".")[0].lower() in _WINDOWS_DEVICES:
        raise CertsError(f"VEN name {name!r} is a reserved device name on Windows")
    return name


def check_host_name(name: str) -> str:
    """A host name or IP address for the VTN certificates' subject alternative names, normalized
    (lower-case DNS name, canonical IP text), else CertsError."""
    text = name.strip() if isinstance(name, str) else ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    dns = text.lower().rstrip(".")
    labels = dns.split(".")
    if labels and labels[0] == "*":  # a wildcard is allowed as the whole leftmost label only
        labels = labels[1:]
    if not dns or len(dns) > 253 or not labels or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise CertsError(f"host name {name!r} is neither an IP address nor a DNS name "
                         "(letters, digits and '-' in dot-separated labels)")
    return dns


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _san_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple([n.value.lower() if isinstance(n, x509.DNSName) else str(n.value)
                  for n in san if isinstance(n, (x509.DNSName, x509.IPAddress))])


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------- files


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode) if hasattr(os, "fchmod") else os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; concurrent first runs are the user's problem
        yield
        return
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ensure_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    if directory.exists():
        raise CertsError(f"{directory} exists and is not a directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:  # somebody else made it meanwhile
        return
    os.chmod(directory, 0o700)  # mkdir's mode is subject to the umask


# --------------------------------------------------------------------------- issuing


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "adrstack development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: x509.Name, issuer: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
    start = _now() - BACKDATE
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _issue_ca() -> tuple[x509.Certificate, object]:
    key = _new_key("ecc")
    name = _name("adrstack development CA")
    cert = (_builder(name, name, key.public_key(), CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _issue_leaf(kind: str, common_name: str, usages: list, hosts: Iterable[str],
                ca_cert: x509.Certificate, ca_key) -> tuple[x509.Certificate, object]:
    key = _new_key(kind)
    # RSA key transport (TLS_RSA_WITH_...) needs keyEncipherment; ECDHE-ECDSA only signs.
    builder = (_builder(_name(common_name), ca_cert.subject, key.public_key(), LEAF_DAYS)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=kind == "rsa", data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    hosts = list(hosts)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                                        critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


# --------------------------------------------------------------------------- reading back


def _paths(directory: Path, stem: str) -> tuple[Path, Path]:
    return directory / f"{stem}.crt", directory / f"{stem}.key"


def _present(directory: Path, stem: str) -> bool:
    """True when both files are there, False when neither; CertsError for half a pair."""
    cert, key = _paths(directory, stem)
    if cert.exists() and key.exists():
        return True
    if not cert.exists() and not key.exists():
        return False
    there, gone = (cert, key) if cert.exists() else (key, cert)
    raise CertsError(f"{there} exists without {gone.name}; restore {gone.name} or remove {there.name} "
                     "to have the pair created again")


def _load(directory: Path, stem: str) -> tuple[x509.Certificate, object]:
    cert_path, key_path = _paths(directory, stem)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise CertsError(f"cannot read {cert_path.name}/{key_path.name} in {directory}: {e}") from None
    if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo):
        raise CertsError(f"{key_path} is not the key of {cert_path}")
    return cert, key


def _check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate, what: Path) -> None:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CertsError(f"{what} was not issued by the CA in {what.parent} (ca.crt); remove it to have it "
                         "issued again") from None


def fingerprint_of_pem(pem: bytes) -> str:
    return fingerprint_of_der(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER))


# --------------------------------------------------------------------------- the one entry point


def ensure_certs(directory: os.PathLike | str, ven_names: Iterable[str] = (),
                 host_names: Iterable[str] = ()) -> CertSet:
    """Create what is missing of the CA, the VTN's two certificates and the named VENs'
    certificates in ``directory``; reuse what is there. Raises CertsError (before writing
    anything) for a bad VEN or host name, and for files that do not fit together."""
    directory = Path(directory)
    vens = _unique(check_ven_name(n) for n in ven_names)
    requested = _unique(check_host_name(h) for h in host_names)
    _ensure_dir(directory)
    with _locked(directory):
        return _ensure(directory, vens, requested)


def _ensure(directory: Path, vens: list[str], requested_hosts: list[str]) -> CertSet:
    hosts = _unique([*DEFAULT_HOST_NAMES, *requested_hosts])
    common_name = requested_hosts[0] if requested_hosts else DEFAULT_HOST_NAMES[0]
    # Everything is checked before anything is written.
    have_ca = _present(directory, CA)
    have_leaf = {stem: _present(directory, stem) for stem in (VTN_ECC, VTN_RSA, *vens)}
    if not have_ca and any(have_leaf.values()):
        found = ", ".join(f"{s}.crt" for s, there in have_leaf.items() if there)
        raise CertsError(f"{directory} has {found} but no ca.crt/ca.key: a new CA would not have issued them; "
                         "restore the CA or remove the other files")

    if have_ca:
        ca_cert, ca_key = _load(directory, CA)
    else:
        ca_cert, ca_key = _issue_ca()
    existing = {stem: _load(directory, stem) for stem, there in have_leaf.items() if there}
    for stem, (cert, _) in existing.items():
        _check_issued_by(cert, ca_cert, directory / f"{stem}.crt")

    def pair(stem: str, cert: x509.Certificate, created: bool) -> Pair:
        cert_path, key_path = _paths(directory, stem)
        return Pair(cert_path, key_path, fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER)), created)

    def store(stem: str, cert: x509.Certificate, key) -> None:
        cert_path, key_path = _paths(directory, stem)
        _write_atomically(key_path, _key_pem(key), 0o600)  # key first: a cert alone is never left behind
        _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    if not have_ca:
        store(CA, ca_cert, ca_key)
    ca = pair(CA, ca_cert, not have_ca)

    vtn_usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    vtn: dict[str, Pair] = {}
    named: list[set[str]] = []
    for stem, kind in ((VTN_ECC, "ecc"), (VTN_RSA, "rsa")):
        if stem in existing:
            cert = existing[stem][0]
            named.append(set(_san_names(cert)))
            vtn[stem] = pair(stem, cert, False)
        else:
            cert, key = _issue_leaf(kind, common_name, vtn_usages, hosts, ca_cert, ca_key)
            store(stem, cert, key)
            named.append(set(hosts))
            vtn[stem] = pair(stem, cert, True)
    # A name counts as present only when both VTN certificates carry it.
    in_both = named[0] & named[1]
    missing = tuple(h for h in hosts if h not in in_both)
    in_both_ordered = tuple([h for h in hosts if h in in_both] + sorted(in_both - set(hosts)))

    ven_pairs: dict[str, Pair] = {}
    for name in vens:
        if name in existing:
            ven_pairs[name] = pair(name, existing[name][0], False)
        else:
            cert, key = _issue_leaf("ecc", name, [ExtendedKeyUsageOID.CLIENT_AUTH], (), ca_cert, ca_key)
            store(name, cert, key)
            ven_pairs[name] = pair(name, cert, True)

    return CertSet(directory, ca, vtn[VTN_ECC], vtn[VTN_RSA], ven_pairs, in_both_ordered, missing)
