"""Third-party chatter (transformers, diffusers, tqdm) stays out of charstudio's output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What in-process generation used to print around charstudio's own lines, made by the
# libraries' own loggers, warnings and progress bars.
NOISY = """
import sys
from pathlib import Path
if sys.argv[1] == "quiet":
    from charstudio.cli.quiet import quiet_third_party
    from charstudio.cli import debug_enabled
    quiet_third_party(debug=debug_enabled())
import warnings
from diffusers.utils import logging as dlog
from transformers.utils import logging as tlog
dlog.get_logger("diffusers.models.modeling_utils").warning(
    "There are modules in UNet2DConditionModel that should be kept in float32"
)
tlog.get_logger("transformers.image_utils").warning("torchvision is not available")
for _ in dlog.tqdm(range(3), desc="Loading pipeline components..."):
    pass
warnings.warn_explicit("deprecated", FutureWarning, "x.py", 1, module="transformers.models")
print("charstudio's own line")
"""


def run(mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "DIFFUSERS_"))}
    clean = {k: v for k, v in clean.items() if not k.startswith(("TRANSFORMERS_", "HF_HUB_"))}
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", NOISY, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def test_in_process_noise_is_silenced() -> None:
    loud = run("loud")
    for line in ("should be kept in float32", "torchvision", "Loading pipeline components"):
        assert line in loud.stderr  # the libraries do print it by default
    quiet = run("quiet")
    assert quiet.stderr == ""
    assert quiet.stdout == "charstudio's own line\n"


def test_debug_keeps_everything() -> None:
    debug = run("quiet", CHARSTUDIO_DEBUG="1")
    assert "should be kept in float32" in debug.stderr


def charstudio(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHARSTUDIO_")}
    return subprocess.run(
        [sys.executable, "-m", "charstudio", *args],
        env={**clean, "CHARSTUDIO_HOME": str(tmp_path / "home"), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_settings_debug_decides_tracebacks(tmp_path: Path) -> None:
    # Settings.debug was never read: the CLI looked at the variable itself, so
    # CHARSTUDIO_DEBUG=0 showed tracebacks and `debug = true` in charstudio.toml did nothing.
    assert charstudio(tmp_path, "init").returncode == 0
    plain = charstudio(tmp_path, "character", "show", "nobody")
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "no character named" in plain.stderr
    off = charstudio(tmp_path, "character", "show", "nobody", CHARSTUDIO_DEBUG="0")
    assert off.returncode == 1 and "Traceback" not in off.stderr
    (tmp_path / "charstudio.toml").write_text("debug = true\n")
    on = charstudio(tmp_path, "character", "show", "nobody")
    assert "Traceback" in on.stderr and "NotFound" in on.stderr
