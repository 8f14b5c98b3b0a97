"""The trusted mesh's files: authority, trust files, certificate profile, revocations, the
daemon's --trust setting."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bpv7.bpsec import OperationFailure
from convergence.tcpcl.tls import NodeIdAuthResult, authenticate_node_id
from ucp_dtn.agent.security import SecurityRole
from ucp_dtn.daemon.config import SettingsError, load_settings
from ucp_dtn.trust import (
    MeshAnchors,
    MeshAuthority,
    MeshRole,
    MeshTrust,
    TrustError,
    TrustFile,
    certificate_facts,
)

NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
def authority(tmp_path: Path) -> MeshAuthority:
    return MeshAuthority.create(tmp_path / "authority", "Test mesh")


def test_the_authority_is_private_and_issues_profile_certificates(
    authority: MeshAuthority, tmp_path: Path
) -> None:
    assert os.stat(authority.path).st_mode & 0o777 == 0o700
    assert os.stat(authority.path / "ca.key").st_mode & 0o777 == 0o600
    hub = authority.issue("dtn://hub/", MeshRole.NODE)
    facts = hub.facts
    assert (facts.node_id, facts.role) == ("dtn://hub/", MeshRole.NODE)
    # RFC 9174 §4.4.1: the node ID in an id-on-bundleEID otherName, as TCPCL's TLS reads it.
    der = hub.certificate.public_bytes(serialization.Encoding.DER)
    assert authenticate_node_id("dtn://hub/", der) is NodeIdAuthResult.SUCCESS
    assert authenticate_node_id("dtn://c/", der) is NodeIdAuthResult.FAILURE
    admin = authority.issue("dtn://boss/", MeshRole.ADMIN)
    assert admin.facts.role is MeshRole.ADMIN and admin.facts.is_client
    with pytest.raises(TrustError, match="already has a live certificate"):
        authority.issue("dtn://hub/", MeshRole.NODE)
    for bad in ("hub", "dtn://hub/x", "dtn://" + "a" * 300 + "/"):
        with pytest.raises(TrustError):
            authority.issue(bad, MeshRole.NODE)
    assert MeshAuthority.open(authority.path).certificate == authority.certificate
    with pytest.raises(TrustError, match="already holds"):
        MeshAuthority.create(authority.path, "again")
    with pytest.raises(TrustError, match="ucp trust init"):
        MeshAuthority.open(tmp_path / "nothing")


def test_a_trust_file_is_one_private_pem_file(authority: MeshAuthority, tmp_path: Path) -> None:
    trust = authority.issue("dtn://alice/", MeshRole.CLIENT)
    path = tmp_path / "alice.trust.pem"
    trust.write(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(TrustError, match="exists"):
        trust.write(path)
    again = TrustFile.read(path)
    assert again.certificate == trust.certificate and again.node_id == "dtn://alice/"
    assert path.read_text().startswith("# ucp-dtn trust file of dtn://alice/ (client)")
    os.chmod(path, 0o644)
    with pytest.raises(TrustError, match="other users can read it"):
        TrustFile.read(path)
    assert TrustFile.read(path, private=False).node_id == "dtn://alice/"
    text = path.read_bytes()
    with pytest.raises(TrustError, match="not a trust file"):
        TrustFile.from_pem(text.split(b"-----BEGIN PRIVATE KEY")[0])
    other = MeshAuthority.create(tmp_path / "other", "Other mesh")
    foreign = other.issue("dtn://alice/", MeshRole.CLIENT)
    mixed = (
        foreign.to_pem().split(b"-----BEGIN PRIVATE KEY")[0].split(b"-----END CERTIFICATE-----")[0]
        + b"-----END CERTIFICATE-----\n"
        + trust.to_pem().split(b"-----END CERTIFICATE-----\n", 1)[1]
    )
    with pytest.raises(TrustError):
        TrustFile.from_pem(mixed)


def test_anchors_check_signers_once_and_apply_revocations(authority: MeshAuthority) -> None:
    anchors = MeshAnchors(authority.certificate)
    alice = authority.issue("dtn://alice/", MeshRole.CLIENT)
    assert anchors.verify([alice.certificate], NOW) == alice.certificate
    assert anchors.verify([alice.certificate], NOW) == alice.certificate
    assert (anchors.validations, anchors.cache_hits) == (1, 1)
    signer = anchors.signer("dtn://alice/")
    assert signer is not None and signer.role is MeshRole.CLIENT
    later = NOW + datetime.timedelta(days=400)
    with pytest.raises(OperationFailure, match="not trusted"):
        anchors.verify([alice.certificate], later)
    other = MeshAuthority.create(authority.path.parent / "other", "Other mesh")
    with pytest.raises(OperationFailure, match="not trusted"):
        anchors.verify([other.issue("dtn://alice/", MeshRole.CLIENT).certificate], NOW)
    # A revocation list: newer ones apply, older and foreign ones do not.
    authority.revoke("dtn://alice/")
    crl = authority.revocation_list()
    assert anchors.apply(crl, b"der")
    assert not anchors.apply(crl, b"der")
    assert anchors.signer("dtn://alice/") is None
    with pytest.raises(OperationFailure, match="revoked"):
        anchors.verify([alice.certificate], NOW)
    other.issue("dtn://x/", MeshRole.NODE)
    other.revoke("dtn://x/")
    with pytest.raises(TrustError, match="not signed by the mesh authority"):
        anchors.apply(other.revocation_list(), b"")
    # The name is free again once revoked.
    assert authority.issue("dtn://alice/", MeshRole.CLIENT).node_id == "dtn://alice/"
    assert [entry.revoked for entry in authority.issued()] == [True, False]


def test_a_certificate_of_another_profile_has_no_role(authority: MeshAuthority) -> None:
    facts = certificate_facts(authority.certificate)
    assert facts.role is None
    assert isinstance(authority.certificate, x509.Certificate)


def test_the_daemon_joins_the_mesh_with_its_trust_file(
    authority: MeshAuthority, tmp_path: Path
) -> None:
    path = tmp_path / "hub.trust.pem"
    authority.issue("dtn://hub/", MeshRole.NODE).write(path)
    settings = load_settings(["--in-memory", "--trust", str(path)])
    node = settings.node
    assert str(node.node_id) == "dtn://hub/"
    assert node.tls is not None and node.tls.require and node.tls.require_node_id
    assert node.security is not None
    roles = [(rule.role, rule.source.text, rule.destination.text) for rule in node.security.rules]
    assert roles == [
        (SecurityRole.SOURCE, "dtn://hub/ucp/*", "*"),
        (SecurityRole.ACCEPTOR, "*", "dtn://hub/ucp/*"),
    ]
    assert isinstance(settings.trust, MeshTrust)
    config = tmp_path / "node.toml"
    config.write_text('in_memory = true\ntrust = "hub.trust.pem"\n')
    assert str(load_settings(["-c", str(config)]).node.node_id) == "dtn://hub/"
    with pytest.raises(SettingsError, match="not the trust file's"):
        load_settings(["--in-memory", "--trust", str(path), "-n", "dtn://c/"])
    with pytest.raises(SettingsError, match="tls"):
        load_settings(["--in-memory", "--trust", str(path), "--tls-cert", str(path)])
    with pytest.raises(SettingsError, match="cannot read the trust file"):
        load_settings(["--in-memory", "--trust", str(tmp_path / "none.pem")])


def test_results_are_sealed_to_their_owner(authority: MeshAuthority) -> None:
    import uuid

    from ucp_dtn.trust.sealing import is_sealed, open_result, open_sealed, seal, seal_result
    from ucp_dtn.ucp import JobResult, ResultStatus

    alice = authority.issue("dtn://alice/", MeshRole.CLIENT)
    bob = authority.issue("dtn://bob/", MeshRole.CLIENT)
    sealed = seal(b"the secret", alice.certificate)
    assert is_sealed(sealed) and b"the secret" not in sealed
    assert open_sealed(sealed, alice.key) == b"the secret"
    assert seal(b"the secret", alice.certificate) != sealed  # a fresh key and IV each time
    with pytest.raises(TrustError, match="does not open with this key"):
        open_sealed(sealed, bob.key)
    message = cbor2.loads(sealed)
    message.value[2] = bytes([message.value[2][0] ^ 1]) + message.value[2][1:]
    with pytest.raises(TrustError, match="altered"):
        open_sealed(cbor2.dumps(message), alice.key)
    with pytest.raises(TrustError, match=r"malformed|not a sealed"):
        open_sealed(b"\xd8\x60\x80", alice.key)
    result = JobResult(
        uuid.UUID(int=3),
        "dtn://hub/ucp/executor",
        ResultStatus.EXIT,
        exit_code=3,
        message="exit 3",
        stdout_tail=b"out",
        stderr_tail=b"err",
        archive=b"PK\x05\x06" + bytes(18),
    )
    hidden = seal_result(result, alice.certificate)
    assert (hidden.message, hidden.stdout_tail, hidden.stderr_tail, hidden.archive) == (
        "",
        b"",
        b"",
        None,
    )
    assert hidden.status == ResultStatus.EXIT and hidden.exit_code == 3
    assert JobResult.from_cbor(hidden.to_cbor()) == hidden
    assert open_result(hidden, alice.key) == result
    assert open_result(result, alice.key) is result
    with pytest.raises(TrustError):
        open_result(hidden, bob.key)
