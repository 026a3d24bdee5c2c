"""The deployment files say what production needs, and a compose tool accepts them.

``docker-compose.yml`` is validated by Docker Compose itself (``docker compose`` or the
standalone ``docker-compose``; ``scripts/test`` installs Debian's when neither is there), which
checks it against the compose specification and resolves its variables, with no Docker engine.
The properties that matter for a safe start are checked on the parsed file: healthchecks
everywhere, start order on health, migrations before serving, and secrets only from the
environment. ``Dockerfile`` and ``constraints.txt`` get the checks that need no Docker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
CONSTRAINTS = REPO_ROOT / "constraints.txt"

#: The variables compose must refuse to start without; test values stand in for them here.
REQUIRED_SECRETS = ("VIGIL_SECRET_KEY", "POSTGRES_PASSWORD")
SERVICES = ("postgis", "redis", "api", "worker")
#: Environment variable names that hold secrets and so may only come from the environment.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|API_KEY)", re.IGNORECASE)
#: ``${NAME:?message}`` or ``${NAME?message}``: compose stops with the message when NAME is unset.
REQUIRED_FROM_ENV = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*):?\?[^}]*\}$")


# --------------------------------------------------------------------------- the compose tool


def _compose_command() -> list[str] | None:
    """``docker compose`` (the v2 plugin) if it answers, else ``docker-compose``, else None."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=60
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = _compose_command()
    if command is None:
        pytest.skip(
            "no compose validator installed: neither `docker compose` nor `docker-compose` "
            "(scripts/test installs Debian's docker-compose; or apt-get install docker-compose)"
        )
    return command


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    # Compose reads an .env beside the file by default; a developer's real one must not leak in.
    path = tmp_path / "empty.env"
    path.write_text("", encoding="utf-8")
    return path


def _config(
    compose: list[str], compose_file: Path, env_file: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose, "--env-file", str(env_file), "-f", str(compose_file), "config", "-q"],
        cwd=compose_file.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    env.update({name: "test-value-" + "x" * 40 for name in REQUIRED_SECRETS})
    env.update(overrides)
    return env


def test_compose_tool_accepts_the_file(compose: list[str], empty_env_file: Path) -> None:
    result = _config(compose, COMPOSE_FILE, empty_env_file, _environment())
    assert result.returncode == 0, f"{' '.join(compose)} config rejected it:\n{result.stderr}"


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_each_secret(
    compose: list[str], empty_env_file: Path, secret: str
) -> None:
    env = _environment()
    del env[secret]
    result = _config(compose, COMPOSE_FILE, empty_env_file, env)
    assert result.returncode != 0, f"compose accepted the file without {secret} set"
    assert secret in result.stderr + result.stdout


def test_compose_tool_really_validates(
    compose: list[str], empty_env_file: Path, tmp_path: Path
) -> None:
    # Guards the two tests above: a validator that accepts anything would prove nothing.
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  api:\n    image: x\n    no_such_option: 1\n", encoding="utf-8")
    assert _config(compose, bad, empty_env_file, _environment()).returncode != 0


# --------------------------------------------------------------------------- the parsed file


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    yaml = pytest.importorskip(
        "yaml", reason="PyYAML is not installed: it belongs in the [dev] extra"
    )
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))  # resolves `<<:` merges
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return spec["services"]


def _environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" list form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def _command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return command if isinstance(command, str) else " ".join(str(part) for part in command)


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def test_all_services_are_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(SERVICES) <= set(services)


def test_every_service_has_an_enabled_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check.get("test"), f"{name}: healthcheck has no test"
        assert check["test"] != ["NONE"], f"{name}: healthcheck test is NONE"


def test_every_service_restarts(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_services_wait_for_healthy_backing_services(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends = services[name].get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must name conditions, not a list"
    for backing in ("postgis", "redis"):
        assert depends.get(backing, {}).get("condition") == "service_healthy", (name, backing)


def test_worker_waits_for_a_healthy_api_so_migrations_ran(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["worker"]["depends_on"].get("api", {}).get("condition") == "service_healthy"


def test_api_migrates_before_serving(services: dict[str, dict[str, Any]]) -> None:
    command = _command_text(services["api"])
    # `&&`: no serving if the migration failed; --no-migrate: replicas do not migrate again.
    assert re.search(r"vigil db upgrade\s*&&\s*(exec\s+)?vigil serve\b", command), command
    assert "--no-migrate" in command
    assert "--host 0.0.0.0" in command
    assert "--port 8000" in command


def test_healthchecks_ask_the_right_questions(services: dict[str, dict[str, Any]]) -> None:
    assert "pg_isready" in _healthcheck_text(services["postgis"])
    assert "redis-cli ping" in _healthcheck_text(services["redis"])
    assert "/readyz" in _healthcheck_text(services["api"])
    assert "Worker" in _healthcheck_text(services["worker"])


def test_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgis"]["image"].startswith("postgis/postgis:15-")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("api", "worker"):
        assert services[name].get("build"), f"{name} must be built from this repository"
    assert services["api"].get("image") == services["worker"].get("image")
    assert "vigil worker" in _command_text(services["worker"])


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_services_run_in_production_mode(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _environment_of(services[name])
    assert env.get("VIGIL_MODE") == "production"
    assert env.get("VIGIL_DATABASE_URL", "").startswith("postgresql+psycopg://")
    assert env.get("VIGIL_REDIS_URL", "").startswith("redis://")
    match = REQUIRED_FROM_ENV.match(env.get("VIGIL_SECRET_KEY", ""))
    assert match, "VIGIL_SECRET_KEY must be ${VIGIL_SECRET_KEY:?...}, from the environment"
    assert match["name"] == "VIGIL_SECRET_KEY"


def _all_environment(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    for service_name, service in services.items():
        for name, value in _environment_of(service).items():
            yield service_name, name, value


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for service, name, value in _all_environment(services):
        if SECRET_NAME.search(name) and not name.endswith("_FILE"):
            assert REQUIRED_FROM_ENV.match(value), (
                f"{service}: {name} must come from the environment as ${{{name}:?...}}, "
                f"not be written in the file"
            )
        if "://" in value:
            password = urlsplit(value).password
            assert password is None or password.startswith("${"), (
                f"{service}: {name} has a password written into its URL"
            )


def test_no_env_file_is_committed() -> None:
    tracked = subprocess.run(
        [shutil.which("git") or "git", "ls-files", "--", ".env", "*.env"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.strip() == "", f"secrets file committed: {tracked.stdout}"


# --------------------------------------------------------------------------- Dockerfile, pins


def test_dockerfile_builds_a_non_root_production_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert re.search(r"^(ARG PYTHON_IMAGE=|FROM )python:3\.11-slim\b", text, re.MULTILINE)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the image runs as root: add a USER"
    assert users[-1] not in {"root", "0", "0:0"}
    assert "EXPOSE 8000" in lines
    assert any("-c constraints.txt" in line for line in lines if line.startswith("RUN "))
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    assert cmd == 'CMD ["vigil", "serve", "--host", "0.0.0.0", "--port", "8000"]'


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_every_declared_dependency() -> None:
    # A dependency added to pyproject.toml without regenerating constraints.txt would install
    # unpinned, at whatever version is newest that day: CI and production would drift apart.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared += extra
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            assert version, f"constraints.txt: {line!r} has no version"
            pins[_normalise(name)] = version
    assert "vigil" not in pins
    for requirement in declared:
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert name, requirement
        assert _normalise(name.group()) in pins, f"{requirement} is not pinned in constraints.txt"
