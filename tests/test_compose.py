"""The deployment files: docker-compose stack, CI entry point, scripts and README commands."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKER_COMPOSE = Path("/usr/bin/docker-compose")
SECRETS = {"SECRET_KEY": "test-secret", "FERNET_KEYS": "test-fernet", "POSTGRES_PASSWORD": "pw"}
SERVICES = {"postgres", "redis", "web", "worker", "beat"}


def _compose_env(tmp_path: Path, values: dict[str, str]) -> tuple[dict[str, str], Path]:
    """An environment without the secrets plus an env file holding exactly `values`."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return env, env_file


def _run_compose_config(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess:
    env, env_file = _compose_env(tmp_path, values)
    cmd = [str(DOCKER_COMPOSE), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The compose model: docker-compose's resolved config when available, else the raw YAML."""
    if DOCKER_COMPOSE.exists():
        result = _run_compose_config(tmp_path_factory.mktemp("compose"), SECRETS)
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _depends(service: dict) -> dict:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def test_compose_defines_all_services(compose: dict) -> None:
    assert set(compose["services"]) >= SERVICES


@pytest.mark.parametrize("name", ["postgres", "redis", "web"])
def test_compose_service_has_healthcheck(compose: dict, name: str) -> None:
    test = compose["services"][name]["healthcheck"]["test"]
    assert test and test[0] in {"CMD", "CMD-SHELL"}


def test_compose_web_healthcheck_hits_healthz(compose: dict) -> None:
    test = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert "urllib" in test and "/healthz" in test


@pytest.mark.parametrize("role", ["worker", "beat"])
def test_compose_celery_services_start_celery(compose: dict, role: str) -> None:
    argv = _argv(compose["services"][role]["command"])
    assert argv[:4] == ["celery", "-A", "migration_planner", role]


def test_compose_web_waits_for_healthy_backends(compose: dict) -> None:
    deps = _depends(compose["services"]["web"])
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["redis"]["condition"] == "service_healthy"


def test_compose_web_migrates_then_serves_gunicorn(compose: dict) -> None:
    script = " ".join(_argv(compose["services"]["web"]["command"]))
    assert script.index("manage.py migrate") < script.index("gunicorn migration_planner.wsgi")
    assert "0.0.0.0:8000" in script


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_compose_app_services_get_runtime_settings(compose: dict, name: str) -> None:
    env = compose["services"][name]["environment"]
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FERNET_KEYS", "ALLOWED_HOSTS"):
        assert key in env
    assert str(env["DEBUG"]).lower() == "false"


def test_compose_requires_secrets() -> None:
    text = COMPOSE_FILE.read_text()
    for key in SECRETS:
        assert "${" + key + ":?" in text


@pytest.mark.skipif(not DOCKER_COMPOSE.exists(), reason="needs /usr/bin/docker-compose")
def test_compose_config_fails_without_secret_key(tmp_path: Path) -> None:
    values = {k: v for k, v in SECRETS.items() if k != "SECRET_KEY"}
    result = _run_compose_config(tmp_path, values)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_env_example_documents_compose_variables() -> None:
    text = (ROOT / ".env.example").read_text()
    for key in [*SECRETS, "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL", "REDIS_URL", "WEB_PORT"]:
        assert f"{key}=" in text


def test_ci_run_execs_the_test_script() -> None:
    ci = ROOT / ".ci" / "run"
    lines = [ln.strip() for ln in ci.read_text().splitlines() if ln.strip()]
    assert lines[0] == "#!/usr/bin/env bash"
    assert [ln for ln in lines[1:] if not ln.startswith("#")] == ["exec bash scripts/test.sh"]
    assert os.access(ci, os.X_OK)


def test_readme_mentions_run_and_test_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "bash scripts/run.sh" in text
    assert "bash scripts/test.sh" in text


@pytest.mark.parametrize("name", ["lib.sh", "setup.sh", "run.sh", "test.sh"])
def test_script_is_strict_and_parses(name: str) -> None:
    path = ROOT / "scripts" / name
    assert "set -euo pipefail" in path.read_text()
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_recovery_clocks_agree_across_app_services(compose: dict) -> None:
    """Web, worker and beat read the same lease and supervisor period (docs/operations.md)."""
    envs = [compose["services"][name]["environment"] for name in ("web", "worker", "beat")]
    for key in ("MP_BATCH_LEASE_SECONDS", "MP_SUPERVISOR_SECONDS", "MP_BASE_URL"):
        assert len({str(env[key]) for env in envs}) == 1, key


def test_run_script_starts_beat_for_the_supervisor() -> None:
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert 'celery" -A migration_planner beat' in script.replace("$MP_VENV/bin/", "")
