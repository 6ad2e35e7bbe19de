"""Workflow templates (``workflows/templates/``) and accepted workflows (``workflows/generated/``).

A template is a built, validated graph in which the per-job values are ``{{placeholders}}``
(``{{checkpoint}}``, ``{{trigger_word}}``, ``{{prompt}}`` ...): a user can open it in
ComfyUI, and :func:`fill_template` turns it back into a runnable graph. The graph is
built from a request whose values are sentinels, which are then replaced, so a template
is always exactly what the builders make.

A workflow whose images the user accepted is saved with its request and result, so it
can be reproduced. Every file is written atomically (temporary file, then rename): a
crash never leaves half a JSON file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from charstudio.errors import storage_error_from
from charstudio.library.profile import METHOD_DEFAULTS, Method
from charstudio.workflows.builders import build_workflow
from charstudio.workflows.families import ModelFamilyName
from charstudio.workflows.request import PoseControl, Variation, WorkflowRequest
from charstudio.workflows.types import Graph

__all__ = [
    "TEMPLATE_NAMES",
    "TEMPLATE_PLACEHOLDERS",
    "AcceptedResult",
    "build_template",
    "fill_template",
    "save_generated",
    "write_json_atomic",
    "write_templates",
]

TemplateName = Literal["base", "outfit", "background", "pose"]
TEMPLATE_NAMES: tuple[TemplateName, ...] = ("base", "outfit", "background", "pose")

# Sentinel used while building -> placeholder written into the template, and what it means.
# Longer sentinels first, so that none is replaced inside another.
TEMPLATE_PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "trigger_word": ("TPLTRIGGER", "the character's trigger word"),
    "prompt": ("TPLPROMPT", "what to generate (an outfit, a place, a pose)"),
    "character": ("TPLCHARACTER", "the character's name"),
    "job": ("TPLJOB", "the job id"),
    "checkpoint": ("TPLCHECKPOINT.safetensors", "base model file in models/checkpoints"),
    "lora": ("TPLLORA.safetensors", "character LoRA file in models/loras"),
    "reference_image": ("TPLREFERENCE.png", "reference image name as uploaded"),
    "pose_image": ("TPLPOSE.png", "pose image name as uploaded"),
    "controlnet": ("TPLCONTROLNET.safetensors", "OpenPose ControlNet in models/controlnet"),
}
_FORMAT = "charstudio.workflow-template/1"
_GENERATED_FORMAT = "charstudio.generated-workflow/1"


class AcceptedResult(BaseModel):
    """What an accepted workflow produced.

    Attributes:
        prompt_id: ComfyUI's prompt id.
        server: The server that ran it.
        images: Paths of the accepted images (under ``outputs/<name>/<job>/``).
        identity_similarity: The QC identity score, if measured.
        extra: Anything else worth keeping (timings, QC details).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_id: str
    server: str
    images: list[str]
    identity_similarity: float | None = None
    extra: dict[str, JsonValue] = Field(default_factory=dict)


def build_template(
    name: TemplateName, *, method: Method = "lora_ipadapter", family: ModelFamilyName = "sd15"
) -> dict[str, Any]:
    """Build one template document.

    Args:
        name: ``base``, ``outfit``, ``background`` or ``pose`` (with an OpenPose ControlNet).
        method: Consistency method whose default parameters the template carries.
        family: ``sd15`` or ``sdxl``.

    Returns:
        ``{"format", "name", "method", "family", "placeholders", "graph"}``.
    """
    sentinel = {key: value for key, (value, _) in TEMPLATE_PLACEHOLDERS.items()}
    variation: Variation | None = None if name == "base" else name
    pose = None
    if name == "pose":
        pose = PoseControl(image=sentinel["pose_image"], controlnet=sentinel["controlnet"])
    uses_lora = method in ("lora_ipadapter", "lora_only")
    request = WorkflowRequest(
        character=sentinel["character"],
        job=sentinel["job"],
        trigger_word=sentinel["trigger_word"],
        prompt=sentinel["prompt"],
        variation=variation,
        method=method,
        params=METHOD_DEFAULTS[method],
        seed=0,
        checkpoint=sentinel["checkpoint"],
        family=family,
        lora=sentinel["lora"] if uses_lora else None,
        reference_image=None if method == "lora_only" else sentinel["reference_image"],
        pose=pose,
    )
    graph = _to_placeholders(build_workflow(request))
    used = json.dumps(graph)
    placeholders = {
        key: meaning
        for key, (_, meaning) in TEMPLATE_PLACEHOLDERS.items()
        if "{{" + key + "}}" in used
    }
    placeholders["seed"] = "KSampler.seed is 0 here: set a seed in [0, 2^64-1] per job"
    return {
        "format": _FORMAT,
        "name": name,
        "method": method,
        "family": family,
        "placeholders": placeholders,
        "graph": graph,
    }


def write_templates(
    folder: Path, *, method: Method = "lora_ipadapter", family: ModelFamilyName = "sd15"
) -> list[Path]:
    """Write the four templates (base, outfit, background, pose) to ``folder``.

    Args:
        folder: Usually ``<data root>/workflows/templates``; created if missing.
        method: Consistency method whose defaults the templates carry.
        family: ``sd15`` or ``sdxl``.

    Returns:
        The paths written, ``<name>.json`` each.

    Raises:
        StorageError: the folder cannot be written.
    """
    paths = []
    for name in TEMPLATE_NAMES:
        path = folder / f"{name}.json"
        write_json_atomic(path, build_template(name, method=method, family=family))
        paths.append(path)
    return paths


def fill_template(graph: Graph, values: Mapping[str, str]) -> Graph:
    """Replace ``{{placeholder}}`` in every string of ``graph`` with ``values``.

    Raises:
        KeyError: the graph has a placeholder ``values`` does not give.
    """
    text = json.dumps(graph)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", json.dumps(value)[1:-1])
    filled: Graph = json.loads(text)
    left = sorted(k for k in TEMPLATE_PLACEHOLDERS if "{{" + k + "}}" in text)
    if left:
        raise KeyError(f"template placeholders without a value: {', '.join(left)}")
    return filled


def save_generated(
    folder: Path, *, request: WorkflowRequest, graph: Graph, result: AcceptedResult
) -> Path:
    """Save an accepted workflow with its request and result to ``folder``.

    Args:
        folder: Usually ``<data root>/workflows/generated``; created if missing.
        request: The request the graph was built from.
        graph: The graph that ran.
        result: What it produced.

    Returns:
        ``<folder>/<character>_<job>_<seed>.json``.

    Raises:
        StorageError: the folder cannot be written.
    """
    path = folder / f"{request.character}_{request.job}_{request.seed}.json"
    write_json_atomic(
        path,
        {
            "format": _GENERATED_FORMAT,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": request.model_dump(mode="json"),
            "graph": graph,
            "result": result.model_dump(mode="json"),
        },
    )
    return path


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename.

    Raises:
        StorageError: the folder cannot be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, ensure_ascii=False)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except OSError as exc:  # DiskFull, DataDirNotWritable ... by errno
        raise storage_error_from(exc, path) from exc


def _to_placeholders(graph: Graph) -> Graph:
    text = json.dumps(graph)
    for key, (sentinel, _) in TEMPLATE_PLACEHOLDERS.items():
        text = text.replace(sentinel, "{{" + key + "}}")
    placed: Graph = json.loads(text)
    return placed
