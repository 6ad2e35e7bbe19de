"""scripts/setup.sh (used by demo.sh) and scripts/setup-browser.sh (used by test.sh), run
for real in a scratch copy of the repository with a recording stand-in for apt-get."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fake_tools(tmp_path: Path) -> None:
    """A bin folder whose apt-get records its arguments and fails as a held lock does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    apt = bin_dir / "apt-get"
    apt.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        'echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2\n'
        "exit 100\n"
    )
    apt.chmod(0o755)


def scratch_repo(tmp_path: Path) -> Path:
    """scripts/ and pyproject.toml, with a .venv whose pip only records that it ran."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    pip = venv_bin / "pip"
    pip.write_text(f'#!/bin/sh\necho pip "$@" >> {tmp_path / "pip-calls"}\n')
    pip.chmod(0o755)
    return repo


def run(script: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    if not (tmp_path / "bin").exists():
        fake_tools(tmp_path)
    full_env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", **env}
    full_env["PYTHON"] = sys.executable
    return subprocess.run(
        ["bash", str(script), *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def test_the_demo_setup_never_runs_apt(tmp_path: Path) -> None:
    # scripts/setup.sh used to apt-get install chromium under `set -e`: a dpkg lock held by
    # another process failed the demo (exit 100), which needs no browser.
    repo = scratch_repo(tmp_path)
    for name in ("setup.sh", "demo.sh"):
        assert "apt-get" not in (repo / "scripts" / name).read_text(), name
    result = run(repo / "scripts" / "setup.sh", tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "apt-calls").exists()
    assert "-e .[dev]" in (tmp_path / "pip-calls").read_text()
    # Idempotent: a second run installs nothing.
    (tmp_path / "pip-calls").unlink()
    assert run(repo / "scripts" / "setup.sh", tmp_path).returncode == 0
    assert not (tmp_path / "pip-calls").exists()


def test_a_comment_in_pyproject_does_not_reinstall(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path)
    assert run(repo / "scripts" / "setup.sh", tmp_path).returncode == 0
    (tmp_path / "pip-calls").unlink()
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[project]", "# a note\n[project]", 1))
    assert run(repo / "scripts" / "setup.sh", tmp_path).returncode == 0
    assert not (tmp_path / "pip-calls").exists()


def test_the_browser_setup_waits_for_the_lock_then_says_what_to_do(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path)
    result = run(
        repo / "scripts" / "setup-browser.sh",
        tmp_path,
        CHARSTUDIO_CHROMIUM=str(tmp_path / "no-chromium"),
        CHARSTUDIO_APT_LOCK_WAIT_S="1",
    )
    assert result.returncode == 0, result.stderr
    assert "sudo apt-get update && sudo apt-get install -y chromium" in result.stderr
    if os.geteuid() == 0:
        calls = (tmp_path / "apt-calls").read_text()
        assert "DPkg::Lock::Timeout=1" in calls
        assert "could not install chromium" in result.stderr
    assert "setup-browser.sh" in (repo / "scripts" / "test.sh").read_text()


def test_the_services_script_installs_what_is_missing_or_says_how(tmp_path: Path) -> None:
    """scripts/services.sh (PostgreSQL + Redis for the second test run): with neither
    installed it asks apt for Debian's packages, waiting for a held lock, and says what to
    run when that fails."""
    repo = scratch_repo(tmp_path)
    result = run(
        repo / "scripts" / "services.sh",
        tmp_path,
        "start",
        CHARSTUDIO_PG_BIN=str(tmp_path / "no-postgresql"),
        CHARSTUDIO_REDIS_SERVER=str(tmp_path / "no-redis-server"),
        CHARSTUDIO_SERVICES_DIR=str(tmp_path / "services"),
        CHARSTUDIO_APT_LOCK_WAIT_S="1",
    )
    assert result.returncode == 1
    assert "sudo apt-get update && sudo apt-get install -y postgresql redis-server" in (
        result.stderr
    )
    if os.geteuid() == 0:
        calls = (tmp_path / "apt-calls").read_text()
        assert "DPkg::Lock::Timeout=1" in calls and "could not install" in result.stderr
    else:
        assert "this user cannot install packages" in result.stderr or "could not" in (
            result.stderr
        )


def test_the_services_script_usage_and_urls(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path)
    script = repo / "scripts" / "services.sh"
    urls = subprocess.run(
        ["bash", str(script), "env"],
        env={**os.environ, "CHARSTUDIO_PG_PORT": "6543", "CHARSTUDIO_REDIS_PORT": "7654"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert urls.stdout.splitlines() == [
        "CHARSTUDIO_TEST_DATABASE_URL=postgresql+psycopg://charstudio@127.0.0.1:6543/charstudio",
        "CHARSTUDIO_TEST_QUEUE_URL=redis://127.0.0.1:7654/0",
    ]
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "start|stop|status|env|clean" in usage.stderr
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert "scripts/services.sh start" in test_sh and "services.sh stop" in test_sh
    assert "tests/library tests/jobs tests/api" in test_sh
    # The demo needs neither server.
    assert "services.sh" not in (ROOT / "scripts" / "demo.sh").read_text()
    assert "services.sh" not in (ROOT / "scripts" / "setup.sh").read_text()
