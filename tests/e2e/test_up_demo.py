"""The README's promise on a machine with nothing configured: `adrstack up --demo 3` with
embedded NATS and Postgres shows 3 VENs within 30 s and readings for each within 60 s."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.e2e.conftest import start_stack, stop_stack
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


def test_up_with_embedded_servers_and_three_demo_vens():
    # No NATS_URL / DATABASE_URL: `adrstack up` must bring its own servers.
    stack = start_stack({}, extra_args=["--demo", "3"])
    try:
        assert stack.banner_value("VTN") == f"http://localhost:{stack.vtn_port}/OpenADR2/Simple/2.0b"
        assert stack.banner_value("GraphQL") == f"http://localhost:{stack.api_port}/graphql"
        assert re.fullmatch(r"nats://[\w.\-]+:\d+", stack.banner_value("NATS"))
        db_url = stack.banner_value("Database")
        assert db_url.startswith("postgresql://")

        def demo_vens():
            vens = stack.graphql("{ vens { venId venName } }")["data"]["vens"]
            demo = [v for v in vens if v["venName"].startswith("demo-ven-")]
            return demo if len(demo) == 3 else None

        vens = wait_until(demo_vens, timeout=30, interval=0.5,
                          message="3 demo VENs listed")

        def readings_for_all():
            counts = []
            for v in vens:
                got = stack.graphql('query($v: String!) { readings(venId: $v, limit: 5) { value } }',
                                    {"v": v["venId"]})["data"]["readings"]
                counts.append(len(got))
            return all(counts)

        wait_until(readings_for_all, timeout=60, interval=1, message="readings for each demo VEN")
        with psycopg.connect(db_url) as conn:
            assert conn.execute("select count(distinct ven_id) from readings").fetchone()[0] == 3
    finally:
        assert stop_stack(stack) == 0
