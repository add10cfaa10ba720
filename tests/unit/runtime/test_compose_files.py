"""The compose files cannot drift from the services' settings: no Docker engine here, so what can
be checked without one is checked — every ADRSTACK_* variable a service is given is a setting that
service reads, and the secure overlay turns on each security setting."""

from __future__ import annotations

import json
import re
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
    if service == "scheduler":
        from adrstack.scheduler.settings import SchedulerSettings
        return SchedulerSettings
    if service == "telemetry":
        from adrstack.telemetry.settings import TelemetrySettings
        return TelemetrySettings
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


# The compose specification, checked without a Docker engine: the vendored JSON schema, then what
# issue 9 asks of the stack that the schema cannot say.

SPEC = Path(__file__).resolve().parent / "compose_spec" / "compose-spec.json"
LONG_RUNNING = ("nats", "postgres", "gateway", "scheduler", "telemetry", "api", "nats-box")
SERVICE_IMAGES = {"gateway": "gateway", "scheduler": "scheduler", "telemetry": "telemetry", "api": "api"}


def load(name: str) -> dict:
    return yaml.safe_load((COMPOSE / name).read_text())


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.secure.yml"])
def test_compose_file_follows_the_compose_specification(name):
    jsonschema = pytest.importorskip("jsonschema")
    doc = load(name)
    # The vendored schema predates the top-level project name; the spec's rule for it, checked here.
    project = doc.pop("name")
    assert isinstance(project, str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project)
    validator = jsonschema.Draft201909Validator(json.loads(SPEC.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, "\n".join(errors)


def test_the_schema_check_can_fail():
    jsonschema = pytest.importorskip("jsonschema")
    doc = load("docker-compose.yml")
    doc.pop("name")
    doc["services"]["gateway"]["healthcheck"]["retries"] = "twelve"
    doc["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert len(list(jsonschema.Draft201909Validator(json.loads(SPEC.read_text())).iter_errors(doc))) >= 2


def test_every_long_running_service_has_a_health_check_and_restarts():
    services = load("docker-compose.yml")["services"]
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert services[name].get("restart") == "unless-stopped", name


def test_infrastructure_images_are_pinned_and_the_tests_use_the_same():
    from tests.helpers import NATS_IMAGE, POSTGRES_IMAGE

    services = load("docker-compose.yml")["services"]
    assert services["nats"]["image"] == NATS_IMAGE
    assert services["postgres"]["image"] == POSTGRES_IMAGE
    for name in ("nats", "postgres", "nats-box"):
        image = services[name]["image"]
        assert re.search(r":\d+\.\d+\.\d+(-[a-z0-9]+)?$|:\d+\.\d+-[a-z]+$|@sha256:", image), \
            f"{name}: {image} is not pinned to an exact version"


def test_nats_runs_jetstream_on_a_file_store_volume():
    doc = load("docker-compose.yml")
    nats = doc["services"]["nats"]
    command = nats["command"]
    assert "-js" in command
    store = command[command.index("-sd") + 1]
    assert any(v.endswith(f":{store}") and v.split(":")[0] in doc["volumes"] for v in nats["volumes"])


def test_services_wait_for_the_one_shot_migrate_job():
    services = load("docker-compose.yml")["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["adrstack", "migrate"]
    for name in ("gateway", "scheduler", "telemetry", "api", "simulator"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["simulator"]["depends_on"]["gateway"] == {"condition": "service_healthy"}


def test_listeners_bind_every_interface():
    services = load("docker-compose.yml")["services"]
    assert services["gateway"]["environment"]["ADRSTACK_VTN_HOST"] == "0.0.0.0"
    assert services["api"]["environment"]["ADRSTACK_API_HOST"] == "0.0.0.0"


def test_nats_box_tails_the_stacks_nats():
    box = load("docker-compose.yml")["services"]["nats-box"]
    assert box["environment"]["NATS_URL"] == "nats://nats:4222"
    assert box["depends_on"]["nats"]["condition"] == "service_healthy"
    assert not box.get("profiles"), "`docker compose exec nats-box` needs it up with the stack"


def test_the_simulator_is_a_profile():
    services = load("docker-compose.yml")["services"]
    assert services["simulator"]["profiles"] == ["demo"]
    assert [n for n, s in services.items() if s.get("profiles")] == ["simulator"]


def test_each_service_builds_from_its_own_dockerfile():
    services = load("docker-compose.yml")["services"]
    for name, dockerfile in SERVICE_IMAGES.items():
        build = services[name]["build"]
        assert build["dockerfile"] == f"compose/{dockerfile}.Dockerfile"
        assert ((COMPOSE / build["context"]).resolve() / build["dockerfile"]).is_file()
    for name in ("migrate", "simulator"):
        assert services[name]["build"]["dockerfile"] == "compose/adrstack.Dockerfile"


def test_scheduler_and_telemetry_are_probed_on_their_own_health_port():
    services = load("docker-compose.yml")["services"]
    for name in ("scheduler", "telemetry"):
        variable = f"ADRSTACK_{name.upper()}_HEALTH_PORT"
        test = services[name]["healthcheck"]["test"]
        assert test[-1] == variable and "/readyz" in test[-2], test
        assert int(services[name]["environment"][variable]) > 0, f"{name}: {variable} not set"
        assert f"{name}_health_port" in settings_class(name).model_fields
