"""`adrstack certs` and ensure_certs: the files, their modes, what the certificates say, reuse, refusals."""

from __future__ import annotations

import ipaddress
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from openleadr import utils as openleadr_utils

from adrstack.runtime import certs as certs_module
from adrstack.runtime.certs import CertsError, check_host_name, ensure_certs
from adrstack.runtime.cli import main
from adrstack.runtime.options import parse
from adrstack.shared.identity import fingerprint_of_der
from tests.helpers import temp_dir

VTN_FILES = ["ca.crt", "ca.key", "vtn-ecc.crt", "vtn-ecc.key", "vtn-rsa.crt", "vtn-rsa.key"]


@pytest.fixture
def scratch():
    d = temp_dir("certs-test")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["certs", *argv], env={"HOME": "/nonexistent"})
    out = capsys.readouterr()
    return code, out.out, out.err


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def der(path: Path) -> bytes:
    return load(path).public_bytes(serialization.Encoding.DER)


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if not p.name.startswith(".")}


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


# --------------------------------------------------------------------------- the command


def test_creates_ca_vtn_and_ven_files_with_private_modes_and_prints_fingerprints(scratch, capsys):
    d = scratch / "deep" / "certs"
    code, out, err = run(capsys, "--dir", str(d), "--ven", "ven-1", "--ven", "ven_2.b")
    assert code == 0, err
    assert sorted(snapshot(d)) == sorted(VTN_FILES + ["ven-1.crt", "ven-1.key", "ven_2.b.crt", "ven_2.b.key"])
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in snapshot(d):
        mode = stat.S_IMODE((d / name).stat().st_mode)
        assert mode == (0o600 if name.endswith(".key") else 0o644), (name, oct(mode))
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["ven-1", "ven_2.b"]
    for line in lines:
        name, fingerprint = line.split()
        assert fingerprint == fingerprint_of_der(der(d / f"{name}.crt"))
        assert fingerprint == openleadr_utils.certificate_fingerprint((d / f"{name}.crt").read_text())
        assert len(fingerprint) == 29
    assert "created" in err and "reused" not in err


def test_a_second_run_reuses_every_file_and_prints_the_same_fingerprints(scratch, capsys):
    code, first, _ = run(capsys, "--dir", str(scratch), "--ven", "a", "--ven", "b")
    assert code == 0
    before = snapshot(scratch)
    code, second, err = run(capsys, "--dir", str(scratch), "--ven", "b", "--ven", "a", "--ven", "c")
    assert code == 0, err
    after = snapshot(scratch)
    assert {k: after[k] for k in before} == before  # same bytes, nothing rewritten
    assert set(after) - set(before) == {"c.crt", "c.key"}
    fp = dict(line.split() for line in first.splitlines())
    again = dict(line.split() for line in second.splitlines())
    assert again["a"] == fp["a"] and again["b"] == fp["b"]
    assert list(again) == ["b", "a", "c"]  # in the order asked for
    assert load(scratch / "c.crt").issuer == load(scratch / "ca.crt").subject
    assert "created c.crt, c.key" in err and "reused ca.crt" in err


def test_a_ven_named_twice_is_made_and_printed_once(scratch, capsys):
    code, out, _ = run(capsys, "--dir", str(scratch), "--ven", "x", "--ven", "x")
    assert code == 0 and len(out.splitlines()) == 1


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "", ".hidden", "-dash", "a b", "x" * 65, "ca",
                                  "VTN-ECC", "vtn-rsa", "con", "nul.txt", "ven\n", "ven\x00", "é"])
def test_unsafe_or_reserved_ven_names_are_refused_with_exit_2_and_nothing_written(scratch, capsys, name):
    d = scratch / "certs"
    code, out, err = run(capsys, "--dir", str(d), "--ven", "good", f"--ven={name}")
    assert code == 2
    assert out == ""
    assert err.startswith("adrstack certs: ") and err.count("\n") == 1, err
    assert not d.exists()  # names are checked before anything is created
    assert not (scratch / "evil.crt").exists()


@pytest.mark.parametrize("host", ["bad host", "a..b", "-x.example", "", "exa_mple.com", "x" * 64 + ".com"])
def test_bad_host_names_are_refused_with_exit_2(scratch, capsys, host):
    code, out, err = run(capsys, "--dir", str(scratch / "c"), f"--host-name={host}")
    assert code == 2 and out == "" and "host name" in err
    assert not (scratch / "c").exists()


def test_host_names_are_normalized():
    assert check_host_name("VTN.Example.COM.") == "vtn.example.com"
    assert check_host_name("::0001") == "::1"
    assert check_host_name("*.example.com") == "*.example.com"
    with pytest.raises(CertsError):
        check_host_name("a.*.example.com")


def test_default_dir_is_certs_in_the_data_dir():
    assert parse(["certs"], {"HOME": "/home/u"}).dir == Path("/home/u/.local/share/adrstack/certs")
    assert parse(["certs"], {"HOME": "/home/u", "ADRSTACK_DATA_DIR": "/srv/adr"}).dir == Path("/srv/adr/certs")
    assert parse(["certs", "--dir", "/etc/x"], {"ADRSTACK_DATA_DIR": "/srv/adr"}).dir == Path("/etc/x")


def test_relative_dir_is_made_absolute(scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    assert parse(["certs", "--dir", "here"], {}).dir == scratch / "here"


def test_options_repeat():
    args = parse(["certs", "--ven", "a", "--ven", "b", "--host-name", "h1", "--host-name", "10.1.2.3"], {})
    assert (args.ven, args.host_name) == (["a", "b"], ["h1", "10.1.2.3"])


# --------------------------------------------------------------------------- what the certificates say


@pytest.fixture
def issued(scratch):
    return ensure_certs(scratch, ["ven-a"], ["vtn.example.com", "10.0.0.7", "LOCALHOST"])


def test_the_ca(issued):
    ca = load(issued.ca.cert)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"
    bc = ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ca.issuer == ca.subject


def test_key_types_and_sizes(issued):
    def key(path):
        return serialization.load_pem_private_key(path.read_bytes(), None)

    assert isinstance(key(issued.vtn_rsa.key), rsa.RSAPrivateKey) and key(issued.vtn_rsa.key).key_size == 2048
    for pair in (issued.ca, issued.vtn_ecc, issued.vens["ven-a"]):
        k = key(pair.key)
        assert isinstance(k, ec.EllipticCurvePrivateKey) and k.curve.name == "secp256r1"
        assert load(pair.cert).public_key().public_numbers() == k.public_key().public_numbers()


def test_vtn_certificates_name_localhost_the_loopback_address_and_the_host_names(issued):
    for pair in (issued.vtn_ecc, issued.vtn_rsa):
        cert = load(pair.cert)
        san = ext(cert, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["localhost", "vtn.example.com"]
        assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "10.0.0.7"]
        eku = ext(cert, x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
        assert not ext(cert, x509.BasicConstraints).value.ca
        assert ext(cert, x509.KeyUsage).value.digital_signature
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        assert 700 <= days <= 800
    # RSA key transport (TLS_RSA_WITH_AES_128_CBC_SHA256) needs keyEncipherment.
    assert ext(load(issued.vtn_rsa.cert), x509.KeyUsage).value.key_encipherment
    assert issued.host_names == ("localhost", "127.0.0.1", "vtn.example.com", "10.0.0.7")
    assert issued.missing_host_names == ()


def test_ven_certificates_are_for_client_auth_with_the_name_as_common_name(issued):
    cert = load(issued.vens["ven-a"].cert)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "ven-a"


def test_chains_verify_against_the_ca(issued):
    store = verification.Store([load(issued.ca.cert)])
    for pair in (issued.vtn_ecc, issued.vtn_rsa):
        for subject in (x509.DNSName("localhost"), x509.DNSName("vtn.example.com"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
            verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
            chain = verifier.verify(load(pair.cert), [])
            assert chain[-1] == load(issued.ca.cert)
        with pytest.raises(verification.VerificationError):
            verification.PolicyBuilder().store(store).build_server_verifier(
                x509.DNSName("elsewhere.example.com")).verify(load(pair.cert), [])
    # cryptography's client verifier wants a SAN in client certificates (web PKI); OpenSSL, which
    # the TLS tests use, does not, and a VEN name need not be a DNS name. So: signature and validity.
    ven = load(issued.vens["ven-a"].cert)
    ven.verify_directly_issued_by(load(issued.ca.cert))
    assert ven.not_valid_before_utc < datetime.now(timezone.utc) < ven.not_valid_after_utc
    with pytest.raises(Exception):
        ven.verify_directly_issued_by(load(issued.vtn_ecc.cert))


def test_fingerprints_in_the_result_are_those_of_the_files(issued):
    for pair in issued.pairs:
        assert pair.fingerprint == fingerprint_of_der(der(pair.cert))
        assert pair.fingerprint == openleadr_utils.certificate_fingerprint(pair.cert.read_text())


# --------------------------------------------------------------------------- reuse and what does not fit


def test_a_new_host_name_for_existing_vtn_certificates_is_reported_and_they_are_kept(scratch, capsys):
    assert run(capsys, "--dir", str(scratch))[0] == 0
    before = snapshot(scratch)
    code, _, err = run(capsys, "--dir", str(scratch), "--host-name", "vtn.example.com", "--ven", "v")
    assert code == 1
    assert "do not name vtn.example.com" in err and "Remove" in err
    after = snapshot(scratch)
    assert {k: after[k] for k in before} == before and "v.crt" in after  # VENs are still made
    # Removing the VTN pairs has them reissued by the same CA with the name.
    for name in ("vtn-ecc.crt", "vtn-ecc.key", "vtn-rsa.crt", "vtn-rsa.key"):
        (scratch / name).unlink()
    code, _, err = run(capsys, "--dir", str(scratch), "--host-name", "vtn.example.com")
    assert code == 0, err
    assert (scratch / "ca.crt").read_bytes() == before["ca.crt"]
    assert "vtn.example.com" in ext(load(scratch / "vtn-rsa.crt"), x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName)
    # ... and asking again for a name they have is quiet.
    assert run(capsys, "--dir", str(scratch), "--host-name", "VTN.example.com")[0] == 0


def test_half_a_pair_is_an_error_that_says_what_to_do(scratch, capsys):
    ensure_certs(scratch, ["v"])
    (scratch / "v.key").unlink()
    code, out, err = run(capsys, "--dir", str(scratch), "--ven", "v")
    assert code == 2 and out == ""
    assert "v.crt exists without v.key" in err


def test_files_without_their_ca_are_refused(scratch):
    ensure_certs(scratch)
    (scratch / "ca.crt").unlink()
    (scratch / "ca.key").unlink()
    with pytest.raises(CertsError, match="no ca.crt/ca.key"):
        ensure_certs(scratch)
    assert not (scratch / "ca.crt").exists()


def test_a_certificate_from_another_ca_is_refused(scratch):
    ensure_certs(scratch / "one", ["v"])
    ensure_certs(scratch / "two")
    for suffix in (".crt", ".key"):
        shutil.copy(scratch / "one" / f"v{suffix}", scratch / "two" / f"v{suffix}")
    with pytest.raises(CertsError, match="not issued by the CA"):
        ensure_certs(scratch / "two", ["v"])


def test_a_key_that_does_not_match_its_certificate_is_refused(scratch):
    ensure_certs(scratch, ["v", "w"])
    shutil.copy(scratch / "w.key", scratch / "v.key")
    with pytest.raises(CertsError, match="is not the key of"):
        ensure_certs(scratch, ["v"])


def test_a_file_in_place_of_the_directory_is_an_error(scratch, capsys):
    (scratch / "f").write_text("")
    code, _, err = run(capsys, "--dir", str(scratch / "f"))
    assert code == 2 and "not a directory" in err


def test_an_interrupted_write_leaves_no_file_behind(scratch, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(certs_module.os, "replace", boom)
    with pytest.raises(OSError):
        ensure_certs(scratch)
    assert snapshot(scratch) == {}
