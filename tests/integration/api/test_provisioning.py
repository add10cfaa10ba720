"""provisionVen / deprovisionVen / provisionedVens write and read the provisioning KV bucket (real
NATS): one certificate per name and one name per certificate, even for concurrent calls; the same
pair again changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest

from adrstack.api.provisioning import NameClaim
from adrstack.shared.identity import ProvisionedVen, provisioning_key, provisioning_name_key
from adrstack.shared.messages import utcnow

from .helpers import bearer, gql

FP_A = "7A:1F:00:11:22:33:44:55:66:C3"
FP_B = "01:23:45:67:89:AB:CD:EF:01:23"
FIELDS = "venName certFingerprint provisionedAt provisionedBy"
PROVISION = f"mutation($n: String!, $f: String!) {{ provisionVen(venName: $n, certFingerprint: $f) {{ {FIELDS} }} }}"
DEPROVISION = f"mutation($f: String!) {{ deprovisionVen(certFingerprint: $f) {{ {FIELDS} }} }}"
LIST = f"{{ provisionedVens {{ {FIELDS} }} }}"


@pytest.fixture
async def kv(app, nc, api_settings):
    return await nc.jetstream().key_value(api_settings.provisioning_bucket)


async def provision(client, name: str, fp: str, token: str | None = None) -> dict:
    return await gql(client, PROVISION, {"n": name, "f": fp}, token=token)


def error_of(data: dict) -> dict:
    assert data["data"] is None, data
    (error,) = data["errors"]
    return error["extensions"]


async def test_provision_writes_the_record_the_gateway_reads(client, kv):
    data = await provision(client, "building-1", FP_A.lower().replace(":", ""))  # any accepted spelling
    assert "errors" not in data, data
    got = data["data"]["provisionVen"]
    assert (got["venName"], got["certFingerprint"], got["provisionedBy"]) == ("building-1", FP_A, None)
    record = ProvisionedVen.from_bytes((await kv.get(provisioning_key(FP_A))).value)
    assert (record.ven_name, record.fingerprint) == ("building-1", FP_A)
    assert record.provisioned_at.isoformat() == got["provisionedAt"]
    claim = NameClaim.model_validate_json((await kv.get(provisioning_name_key("building-1"))).value)
    assert claim.fingerprint == FP_A
    assert provisioning_name_key("building-1") == "name." + hashlib.sha256(b"building-1").hexdigest()[:40]


async def test_a_whole_sha256_is_accepted_as_its_last_10_bytes(client):
    whole = "00" * 22 + FP_A.replace(":", "")
    assert (await provision(client, "b", whole))["data"]["provisionVen"]["certFingerprint"] == FP_A


async def test_the_same_pair_again_changes_nothing(client, kv):
    first = (await provision(client, "building-1", FP_A))["data"]["provisionVen"]
    revision = (await kv.get(provisioning_key(FP_A))).revision
    again = (await provision(client, "building-1", FP_A.lower()))["data"]["provisionVen"]
    assert again == first
    assert (await kv.get(provisioning_key(FP_A))).revision == revision


async def test_conflicts(client):
    await provision(client, "building-1", FP_A)
    assert error_of(await provision(client, "building-2", FP_A)) == {"code": "CONFLICT", "field": "certFingerprint"}
    taken = await provision(client, "building-1", FP_B)
    assert error_of(taken) == {"code": "CONFLICT", "field": "venName"}
    assert FP_A in taken["errors"][0]["message"]
    listed = (await gql(client, LIST))["data"]["provisionedVens"]
    assert [(p["venName"], p["certFingerprint"]) for p in listed] == [("building-1", FP_A)]


@pytest.mark.parametrize("name, fp, field", [
    ("building-1", "zz", "certFingerprint"),
    ("building-1", FP_A[:-3], "certFingerprint"),
    ("   ", FP_A, "venName"),
    ("a\nb", FP_A, "venName"),
    ("x" * 257, FP_A, "venName"),
])
async def test_invalid_input(client, kv, name, fp, field):
    assert error_of(await provision(client, name, fp)) == {"code": "INVALID", "field": field}
    assert (await gql(client, LIST))["data"]["provisionedVens"] == []


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_calls_cannot_both_win(client, round_):
    # The same name with two certificates ...
    results = await asyncio.gather(provision(client, f"n-{round_}", FP_A), provision(client, f"n-{round_}", FP_B))
    assert sorted("errors" in r for r in results) == [False, True], results
    # ... and another certificate under two names.
    fp = f"AA:BB:CC:DD:EE:FF:00:11:22:{round_:02X}"
    results = await asyncio.gather(provision(client, f"x-{round_}", fp), provision(client, f"y-{round_}", fp))
    assert sorted("errors" in r for r in results) == [False, True], results
    listed = (await gql(client, LIST))["data"]["provisionedVens"]
    assert len({p["venName"] for p in listed}) == len(listed) == 2
    # The losers left no claim behind: their names are free.
    loser = next(n for n in (f"x-{round_}", f"y-{round_}") if n not in {p["venName"] for p in listed})
    assert "errors" not in await provision(client, loser, f"AB:BB:CC:DD:EE:FF:00:11:22:{round_:02X}")


async def test_deprovision_frees_the_name_and_the_certificate(client, kv):
    await provision(client, "building-1", FP_A)
    gone = (await gql(client, DEPROVISION, {"f": FP_A}))["data"]["deprovisionVen"]
    assert (gone["venName"], gone["certFingerprint"]) == ("building-1", FP_A)
    assert (await gql(client, LIST))["data"]["provisionedVens"] == []
    assert (await gql(client, DEPROVISION, {"f": FP_A}))["data"]["deprovisionVen"] is None
    # Both are free again, in any pairing.
    assert "errors" not in await provision(client, "building-1", FP_B)
    assert "errors" not in await provision(client, "building-2", FP_A)


async def test_a_stale_claim_is_taken_over_and_a_fresh_one_is_not(client, kv):
    # A provisioning that died between claiming the name and writing its record.
    old = NameClaim(fingerprint=FP_B, claimed_at=utcnow() - timedelta(minutes=5))
    await kv.put(provisioning_name_key("building-1"), old.model_dump_json().encode())
    assert "errors" not in await provision(client, "building-1", FP_A)
    # One still in progress is respected.
    fresh = NameClaim(fingerprint=FP_B, claimed_at=utcnow())
    await kv.put(provisioning_name_key("building-2"), fresh.model_dump_json().encode())
    busy = await provision(client, "building-2", "AA:BB:CC:DD:EE:FF:00:11:22:33")
    assert error_of(busy) == {"code": "CONFLICT", "field": "venName"}
    assert "being provisioned" in busy["errors"][0]["message"]


async def test_listed_by_name_with_a_limit(client):
    for i, name in enumerate(["c", "a", "b"]):
        await provision(client, name, f"00:00:00:00:00:00:00:00:00:0{i}")
    listed = (await gql(client, LIST))["data"]["provisionedVens"]
    assert [p["venName"] for p in listed] == ["a", "b", "c"]
    two = (await gql(client, "{ provisionedVens(limit: 2) { venName } }"))["data"]["provisionedVens"]
    assert [p["venName"] for p in two] == ["a", "b"]


async def test_who_provisioned_is_the_tokens_name(secure_client, tokens):
    data = await provision(secure_client, "building-1", FP_A, token=tokens["admin"])
    assert data["data"]["provisionVen"]["provisionedBy"] == "test admin"
    r = await secure_client.post("/graphql", json={"query": PROVISION, "variables": {"n": "b2", "f": FP_B}},
                                 headers=bearer(tokens["operator"]))
    assert r.status_code == 403
