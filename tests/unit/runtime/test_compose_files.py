"""The compose files cannot drift from the services' settings: no Docker engine here, so what can
be checked without one is checked — every ADRSTACK_* variable a service is given is a setting that
service reads, and the secure overlay turns on each security setting."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

COMPOSE = Path(__file__).resolve().parents[3] / "compose"


def settings_class(service: str):
    if service == "gateway":
        from adrstack.gateway.settings import GatewaySettings
        return GatewaySettings
    if service == "api":
        from adrstack.api.settings import ApiSettings
        return ApiSettings
    from adrstack.shared.settings import CommonSettings
    return CommonSettings


def env_names(cls) -> set[str]:
    return {f"ADRSTACK_{name.upper()}" for name in cls.model_fields}


def merged_environment(*files: str) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for name in files:
        doc = yaml.safe_load((COMPOSE / name).read_text())
        for service, spec in doc["services"].items():
            merged.setdefault(service, {}).update(spec.get("environment") or {})
    return merged


@pytest.mark.parametrize("files", [("docker-compose.yml",), ("docker-compose.yml", "docker-compose.secure.yml")])
def test_every_adrstack_variable_is_a_setting_of_its_service(files):
    for service, env in merged_environment(*files).items():
        if service not in ("gateway", "api", "scheduler", "telemetry"):
            continue
        unknown = {k for k in env if k.startswith("ADRSTACK_")} - env_names(settings_class(service))
        assert not unknown, f"{service}: {sorted(unknown)} are not settings of this service"


def test_the_secure_overlay_turns_on_every_protection():
    env = merged_environment("docker-compose.yml", "docker-compose.secure.yml")
    gateway, api = env["gateway"], env["api"]
    assert gateway["ADRSTACK_ENROLLMENT"] == "provisioned"
    assert gateway["ADRSTACK_REQUIRE_SIGNATURES"] == "true"
    for name in ("TLS_ECC_CERT", "TLS_ECC_KEY", "TLS_RSA_CERT", "TLS_RSA_KEY", "TLS_CA", "SIGN_CERT", "SIGN_KEY"):
        assert gateway[f"ADRSTACK_{name}"].startswith("/certs/")
    assert api["ADRSTACK_API_AUTH"] == "true" and api["ADRSTACK_API_PRODUCTION"] == "true"
    secure = yaml.safe_load((COMPOSE / "docker-compose.secure.yml").read_text())
    assert "https://" in " ".join(secure["services"]["simulator"]["command"])
    assert "8081" in " ".join(secure["services"]["gateway"]["healthcheck"]["test"])
