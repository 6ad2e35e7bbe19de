"""`charstudio serve` + `charstudio worker` subprocesses on a free loopback port, for the
browser tests; the server can be restarted on the same port while the worker runs on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.backends.fake_comfyui import free_port

__all__ = ["Stack"]


class Stack:
    """A data root, a token, a serve process (restartable) and a worker process."""

    def __init__(self, root: Path, *, comfyui_url: str, token: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CHARSTUDIO_HOME": str(root / "data"),
            "CHARSTUDIO_API_TOKEN": token,
            "CHARSTUDIO_COMFYUI_URLS": comfyui_url,
            "CHARSTUDIO_COMFYUI_CHECKPOINT": "rand_sd15.safetensors",
        }
        self.serve: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def _start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        with (self.root / log).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "charstudio", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start(self) -> Stack:
        subprocess.run(
            [sys.executable, "-m", "charstudio", "init"],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.worker = self._start("worker", log="worker.log")
        self.start_server()
        return self

    def start_server(self) -> None:
        self.serve = self._start("serve", "--port", str(self.port), log="serve.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"charstudio serve did not start:\n{self.logs()}")

    def stop_server(self, *, kill: bool = False) -> None:
        """Stop ``serve``; ``kill`` as a crash does (SIGTERM waits for open event streams)."""
        if self.serve is not None:
            if kill:
                self.serve.kill()
            else:
                self.serve.terminate()
            self.serve.wait(15)
            self.serve = None

    def stop(self) -> None:
        self.stop_server()
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait(15)

    def logs(self) -> str:
        return "\n".join(
            (self.root / name).read_text(errors="replace")
            for name in ("serve.log", "worker.log")
            if (self.root / name).exists()
        )
