"""An optional automatic tagger: a WD14-style ONNX model from a local folder.

Users who caption anime or illustration sets usually have one of SmilingWolf's
"WaifuDiffusion" taggers (``wd-v1-4-*-tagger-v2``, ``wd-*-tagger-v3``) on disk already,
either as Hugging Face ships them (a folder holding ``model.onnx`` and
``selected_tags.csv``) or as ComfyUI-WD14-Tagger keeps them (``<model>.onnx`` beside
``<model>.csv``). Both layouts load here; nothing is downloaded.

What the models expect (their model cards and every tagger front-end agree):

* input ``[batch, size, size, 3]`` float32, **BGR**, values 0-255, no normalisation; the
  image padded to a square with white, then resized to ``size`` (448 for v1.4/v3; read from
  the model, not assumed);
* output ``[batch, n_tags]`` probabilities (the models end in a sigmoid);
* ``selected_tags.csv`` columns ``tag_id,name,category,count``; category 0 = general,
  4 = character, 9 = rating.

Only general tags at or above the threshold (0.35 by default, the common setting) are
used, with underscores read as spaces. Character tags are dropped (the trigger word names
the character) and so are ratings (they describe the picture's audience, not its content).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from charstudio.errors import BackendUnavailable, InvalidParameter

__all__ = ["GENERAL_CATEGORY", "Tagger", "load_tagger"]

GENERAL_CATEGORY = 0
_INSTALL = "pip install onnxruntime==1.32.0"


@dataclass(frozen=True)
class Tagger:
    """A loaded tagger: ``tag(image)`` gives its general tags for that image, best first."""

    model_path: Path
    tags: tuple[str, ...]
    general: np.ndarray  # bool mask over ``tags``: which are general tags
    threshold: float
    size: int
    _session: Any  # onnxruntime.InferenceSession (onnxruntime ships no type hints)
    _input: str

    def tag(self, image: Image.Image) -> tuple[str, ...]:
        """General tags whose probability reaches the threshold, most likely first."""
        (probs,) = self._session.run(None, {self._input: self._prepare(image)})
        scores = np.asarray(probs, dtype=np.float32).reshape(-1)
        if scores.shape[0] != len(self.tags):
            raise InvalidParameter(
                f"tagger {self.model_path.name} gives {scores.shape[0]} scores but its tag "
                f"list has {len(self.tags)}; use the .csv that came with this model"
            )
        chosen = np.flatnonzero(self.general & (scores >= self.threshold))
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")]
        return tuple(self.tags[i] for i in chosen)

    def _prepare(self, image: Image.Image) -> np.ndarray:
        rgb = image.convert("RGB")
        side = max(rgb.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        square = square.resize((self.size, self.size), Image.Resampling.BICUBIC)
        bgr = np.asarray(square, dtype=np.float32)[:, :, ::-1]
        return np.ascontiguousarray(bgr[None])


def load_tagger(path: Path, *, threshold: float = 0.35) -> Tagger:
    """Load a tagger from a folder (``model.onnx`` + ``selected_tags.csv``) or a ``.onnx``
    file with a ``.csv`` of the same name beside it.

    Raises:
        InvalidParameter: the files are missing, or the model or tag list is not a tagger's.
        BackendUnavailable: onnxruntime is not installed.
    """
    model, table = _find_files(path)
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError as exc:
        raise BackendUnavailable(f"the tagger needs onnxruntime: {_INSTALL}") from exc
    tags, general = _read_tags(table)
    try:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise InvalidParameter(
            f"tagger model {model} cannot be loaded ({exc}); give a WD14-style .onnx file"
        ) from exc
    inputs = session.get_inputs()
    shape = inputs[0].shape if len(inputs) == 1 else []
    if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2]:
        raise InvalidParameter(
            f"tagger model {model.name} takes {shape or [i.shape for i in inputs]}, not one "
            "[batch, size, size, 3] image as WD14 taggers do; give a WD14-style .onnx file"
        )
    return Tagger(
        model_path=model,
        tags=tags,
        general=general,
        threshold=threshold,
        size=int(shape[1]),
        _session=session,
        _input=inputs[0].name,
    )


def _find_files(path: Path) -> tuple[Path, Path]:
    if not path.exists():
        raise InvalidParameter(
            f"tagger {path} not found; give the folder holding model.onnx and "
            "selected_tags.csv, or the .onnx file with its .csv beside it"
        )
    if path.is_dir():
        model, table = path / "model.onnx", path / "selected_tags.csv"
    elif path.suffix == ".onnx":
        model, table = path, path.with_suffix(".csv")
    else:
        raise InvalidParameter(
            f"tagger {path} is neither a folder nor an .onnx file; give the folder holding "
            "model.onnx and selected_tags.csv, or the .onnx file with its .csv beside it"
        )
    for needed in (model, table):
        if not needed.is_file():
            raise InvalidParameter(
                f"tagger file {needed} not found; a tagger is a folder with model.onnx and "
                "selected_tags.csv, or <model>.onnx with <model>.csv beside it"
            )
    return model, table


def _readable(tag: str) -> str:
    """``long_hair`` -> ``long hair``; kaomoji such as ``^_^`` keep their underscores."""
    tag = tag.strip()
    return tag.replace("_", " ") if any(c.isalnum() for c in tag) else tag


def _read_tags(table: Path) -> tuple[tuple[str, ...], np.ndarray]:
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"name", "category"} <= rows[0].keys():
        raise InvalidParameter(
            f"tag list {table} has no 'name' and 'category' columns; use the "
            "selected_tags.csv that came with the model"
        )
    try:
        categories = np.array([int(r["category"]) for r in rows])
    except ValueError as exc:
        raise InvalidParameter(f"tag list {table} has a non-numeric category ({exc})") from exc
    names = tuple(_readable(r["name"]) for r in rows)
    return names, categories == GENERAL_CATEGORY
