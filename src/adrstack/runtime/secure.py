"""What ``adrstack up --secure`` prepares: certificates, a development admin token, and the demo
VENs provisioned through the API like an operator would."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from adrstack.shared.api_tokens import Role, authenticate, create_token
from adrstack.shared.db import async_engine

from .api_call import GraphQLFailed, graphql
from .certs import CertSet, ensure_certs

DEV_TOKEN_NAME = "adrstack-up"
PROVISION = """mutation Provision($name: String!, $fp: String!) {
  provisionVen(venName: $name, certFingerprint: $fp) { venName certFingerprint }
}"""


@dataclass(frozen=True)
class SecureSetup:
    certs: CertSet
    token: str
    token_file: Path


def certs_dir(data_dir: Path) -> Path:
    return data_dir / "certs"


def prepare(data_dir: Path, database_url: str, ven_names: list[str], host_names: list[str]) -> SecureSetup:
    """Certificates in <data-dir>/certs (created or reused) and an admin token in <data-dir>/api-token
    (reused while it is valid, else a new one). Needs the migrated database."""
    certs = ensure_certs(certs_dir(data_dir), ven_names=ven_names, host_names=host_names)
    token_file = data_dir / "api-token"
    token = asyncio.run(_dev_token(database_url, token_file))
    return SecureSetup(certs=certs, token=token, token_file=token_file)


async def _dev_token(database_url: str, token_file: Path) -> str:
    engine = async_engine(database_url)
    try:
        if token_file.is_file():
            token = token_file.read_text().strip()
            row = await authenticate(engine, token)
            if row is not None and row.role == Role.ADMIN.value:
                return token
        issued = await create_token(engine, Role.ADMIN, DEV_TOKEN_NAME)
    finally:
        await engine.dispose()
    # Written before anyone could read it: the file is created 0600.
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(issued.token + "\n")
    return issued.token


class ProvisioningFailed(RuntimeError):
    pass


def provision(api_url: str, token: str, ven_name: str, fingerprint: str) -> None:
    """provisionVen over GraphQL with the admin token, as an operator would."""
    try:
        graphql(api_url, PROVISION, {"name": ven_name, "fp": fingerprint}, token)
    except GraphQLFailed as e:
        raise ProvisioningFailed(f"provisionVen {ven_name}: {e}") from e
