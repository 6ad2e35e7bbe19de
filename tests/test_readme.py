"""Commands the README shows, run as written where they need no network."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from charstudio.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# ComfyUI v0.3.64's requirements.txt (the lines that matter here, in its spelling).
COMFYUI_REQUIREMENTS = """comfyui-frontend-package==1.28.6
comfyui-workflow-templates==0.1.94
comfyui-embedded-docs==0.2.6
torch
torchsde
torchvision
torchaudio
numpy>=1.25.0
einops
transformers>=4.37.2
safetensors>=0.4.2
aiohttp>=3.11.8
kornia>=0.7.1
spandrel
"""


def test_the_comfyui_requirements_filter_keeps_torchsde(tmp_path: Path) -> None:
    # The README's filter used to be `grep -vE '^(torch|torchvision|torchaudio)'`, which also
    # drops torchsde: ComfyUI then fails at start with "No module named 'torchsde'".
    (line,) = [x for x in README.splitlines() if x.startswith("grep ") and "requirements" in x]
    command = re.sub(r"\s+#.*$", "", line)
    (tmp_path / "requirements.txt").write_text(COMFYUI_REQUIREMENTS)
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    kept = (tmp_path / "req.txt").read_text().split()
    assert "torchsde" in kept
    assert not {"torch", "torchvision", "torchaudio"} & set(kept)
    assert len(kept) == len(COMFYUI_REQUIREMENTS.split()) - 3


def test_every_setting_is_in_the_configuration_table() -> None:
    """Each setting has a row naming it and its CHARSTUDIO_* variable (the per-backend
    model folders were missing from it once)."""
    section = README[README.index("## Configuration") : README.index("## Data layout")]
    rows = {
        row.split("|")[1].strip(): row.split("|")[2]
        for row in section.splitlines()
        if row.startswith("| `")
    }
    names = {name.strip("` "): env for key, env in rows.items() for name in key.split(",")}
    assert set(Settings.model_fields) - set(names) == set()
    for name, env in names.items():
        # A row of several settings may shorten the later ones' variables (`..._FILES`).
        assert f"CHARSTUDIO_{name.upper()}" in env or "..." in env, (name, env)
