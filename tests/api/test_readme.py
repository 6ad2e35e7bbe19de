"""The README's curl examples, run as written against `charstudio serve` + `charstudio worker`."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends.fake_comfyui import FakeComfyUI
from tests.faces.conftest import DATA

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\n```bash\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- api-example --> block"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def stack(tmp_path: Path, comfy: FakeComfyUI) -> Iterator[dict[str, str]]:
    """`charstudio serve` and `charstudio worker` on a fresh data root."""
    port = free_port()
    env = {
        **os.environ,
        "CHARSTUDIO_HOME": str(tmp_path / "data"),
        "CHARSTUDIO_COMFYUI_URLS": comfy.url,
        "CHARSTUDIO_COMFYUI_CHECKPOINT": "rand_sd15.safetensors",
        "API": f"http://127.0.0.1:{port}",
    }
    subprocess.run(
        [sys.executable, "-m", "charstudio", "init"], env=env, check=True, capture_output=True
    )
    logs = [(tmp_path / name).open("wb") for name in ("serve.log", "worker.log")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "charstudio", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for args, log in ((["serve", "--port", str(port)], logs[0]), (["worker"], logs[1]))
    ]
    for log in logs:
        log.close()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['API']}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield env
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


def test_readme_curl_examples_work(stack: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "refs").mkdir(parents=True)
    for i, year in enumerate((2009, 2010, 2012), start=1):
        shutil.copyfile(DATA / f"obama_{year}.jpg", work / "refs" / f"yuki_{i}.jpg")
    run = subprocess.run(
        # curl prints JSON without a final newline: add one so each answer is a line.
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            'curl() { command curl "$@"; echo; }\n' + readme_example(),
        ],
        cwd=work,
        env=stack,
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = (tmp_path / "serve.log").read_text() + (tmp_path / "worker.log").read_text()
    assert run.returncode == 0, (run.stdout, run.stderr, logs)
    lines = run.stdout.splitlines()
    assert json.loads(lines[0])["status"] == "ok"
    assert json.loads(lines[1])["character"] == "yuki"
    assert json.loads(lines[2])["profile"]["method"] == "img2img"
    assert "event: end" in run.stdout and "true" in lines
    legacy = json.loads(lines[-1])
    assert legacy["success"] is True and legacy["method"] == "ipadapter_only"
