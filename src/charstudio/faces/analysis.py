"""Analysing images: which face stands for each image, and its embedding.

One image gets one status (see :data:`~charstudio.faces.types.ImageStatus`). The rule:

1. No face found: ``no_face``.
2. Several faces: the largest stands for the image only when it *clearly dominates*, i.e.
   its box area is at least ``dominance`` (default 2) times the next one's; otherwise
   ``several_faces`` and nothing is embedded, because guessing would poison an identity.
3. The chosen face's shorter box side is below ``min_face_size`` (default 64 px):
   ``face_too_small``. dlib's recognizer works on 150 px chips and InsightFace's on 112 px
   ones; a face under 64 px is upscaled more than twice and its embedding drifts.
4. Otherwise ``ok``, and the chosen face is embedded (with ``embed="all"``, every face at
   least ``min_face_size`` is, as scoring generated scenes needs).

The CCIP backend detects drawn *characters* (whole figures) instead of faces; the same rule
applies to its boxes, and the messages say "character".

Folders are analysed by a process pool (``workers``, default 2: these machines have two
cores and dlib runs single-threaded). Each worker loads the backend once from its
:class:`~charstudio.faces.registry.BackendSpec`.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from charstudio.errors import InvalidParameter, UnsupportedImage
from charstudio.faces.base import FaceBackend, RGBImage, check_rgb_image
from charstudio.faces.registry import BackendSpec, backend_from_spec
from charstudio.faces.types import AnalysedFace, DetectedFace, ImageAnalysis
from charstudio.library.borders import content_box
from charstudio.library.images import load_rgb

__all__ = [
    "DEFAULT_DOMINANCE",
    "DEFAULT_MIN_FACE_SIZE",
    "EmbedMode",
    "analyse_image",
    "analyse_path",
    "analyse_paths",
]

DEFAULT_MIN_FACE_SIZE = 64
DEFAULT_DOMINANCE = 2.0
EmbedMode = Literal["chosen", "all"]


def _check_settings(min_face_size: int, dominance: float) -> None:
    if min_face_size < 1:
        raise InvalidParameter(f"min_face_size must be at least 1 pixel, got {min_face_size}")
    if dominance < 1.0:
        raise InvalidParameter(f"dominance must be at least 1.0, got {dominance}")


def analyse_image(
    backend: FaceBackend,
    image: RGBImage,
    *,
    source: str = "<array>",
    min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    dominance: float = DEFAULT_DOMINANCE,
    embed: EmbedMode = "chosen",
) -> ImageAnalysis:
    """Detect, choose and embed the face of one upright RGB image.

    Args:
        backend: the face backend.
        image: ``(height, width, 3)`` uint8 RGB.
        source: label stored in the result (usually the path).
        min_face_size: smallest box side, in pixels, that is embedded.
        dominance: area ratio by which the largest face must beat the next.
        embed: ``"chosen"``: embed only the face standing for the image; ``"all"``:
            every face large enough (scoring needs the best match among several).

    Raises:
        InvalidParameter: a bad setting or image array.
    """
    # 1. Validate.
    _check_settings(min_face_size, dominance)
    image = check_rgb_image(image)
    height, width = image.shape[:2]
    # 2. Detect, largest first; find the picture inside any uniform borders.
    faces = sorted(backend.detect(image), key=lambda f: f.box.area, reverse=True)
    content = content_box(image)
    noun = getattr(backend, "subject", "face")  # "character" for CCIP
    if not faces:
        message = f"no {noun} found"
        if min(width, height) < min_face_size:
            message = f"no {noun} found: the image is only {width}x{height} pixels"
        return ImageAnalysis(source, "no_face", message, width, height, content=content)
    # 3. Choose.
    chosen, status, message = _choose(
        faces, min_face_size=min_face_size, dominance=dominance, noun=noun
    )
    # 4. Embed.
    if embed == "all":
        targets = [i for i, f in enumerate(faces) if f.box.side >= min_face_size]
    else:
        targets = [chosen] if chosen is not None and status == "ok" else []
    vectors = backend.embed(image, [faces[i] for i in targets]) if targets else []
    by_index = dict(zip(targets, vectors, strict=True))
    analysed = tuple(AnalysedFace(face, by_index.get(i)) for i, face in enumerate(faces))
    return ImageAnalysis(source, status, message, width, height, analysed, chosen, content)


def _choose(
    faces: Sequence[DetectedFace], *, min_face_size: int, dominance: float, noun: str = "face"
) -> tuple[int | None, Literal["ok", "several_faces", "face_too_small"], str]:
    if len(faces) > 1:
        ratio = faces[0].box.area / max(faces[1].box.area, 1e-9)
        if ratio < dominance:
            who = "person" if noun == "face" else "character"
            return (
                None,
                "several_faces",
                f"{len(faces)} {noun}s and the largest is only {ratio:.1f}x the next "
                f"(needs {dominance:.1f}x to be chosen); crop the image to one {who}",
            )
    side = faces[0].box.side
    if side < min_face_size:
        return (
            0,
            "face_too_small",
            f"the {noun} is {side:.0f} px, below the {min_face_size} px minimum; "
            "use a closer or larger image",
        )
    extra = f" (largest of {len(faces)})" if len(faces) > 1 else ""
    return 0, "ok", f"one {noun}, {side:.0f} px{extra}"


def analyse_path(
    backend: FaceBackend,
    path: Path,
    *,
    min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    dominance: float = DEFAULT_DOMINANCE,
    embed: EmbedMode = "chosen",
) -> ImageAnalysis:
    """:func:`analyse_image` on a file, opened upright in RGB.

    Raises:
        UnsupportedImage: the file is missing, corrupt or not an image.
    """
    image = load_rgb(path)
    return analyse_image(
        backend,
        image,
        source=str(path),
        min_face_size=min_face_size,
        dominance=dominance,
        embed=embed,
    )


# Per-process state of pool workers: (spec, min_face_size, dominance, embed).
_WORKER_SETTINGS: tuple[BackendSpec, int, float, EmbedMode] | None = None


def _init_worker(spec: BackendSpec, min_face_size: int, dominance: float, embed: EmbedMode) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = (spec, min_face_size, dominance, embed)
    backend_from_spec(spec)  # load the models once, before the first image arrives


def _analyse_in_worker(path: Path) -> ImageAnalysis:
    assert _WORKER_SETTINGS is not None, "worker used before _init_worker"
    spec, min_face_size, dominance, embed = _WORKER_SETTINGS
    return _analyse_or_record(backend_from_spec(spec), path, min_face_size, dominance, embed)


def _analyse_or_record(
    backend: FaceBackend, path: Path, min_face_size: int, dominance: float, embed: EmbedMode
) -> ImageAnalysis:
    try:
        return analyse_path(
            backend, path, min_face_size=min_face_size, dominance=dominance, embed=embed
        )
    except UnsupportedImage as exc:
        return ImageAnalysis(str(path), "unreadable", str(exc))


def analyse_paths(
    spec: BackendSpec,
    paths: Sequence[Path],
    *,
    workers: int = 2,
    min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    dominance: float = DEFAULT_DOMINANCE,
    embed: EmbedMode = "chosen",
) -> list[ImageAnalysis]:
    """Analyse many files, in parallel, in the order given.

    A file that cannot be read gets status ``unreadable`` instead of stopping the batch.

    Args:
        spec: the backend to use (each worker process loads it once).
        paths: image files.
        workers: processes to use; 1 runs in this process.
        min_face_size: see :func:`analyse_image`.
        dominance: see :func:`analyse_image`.
        embed: see :func:`analyse_image`.

    Raises:
        InvalidParameter: a bad setting.
        BackendUnavailable: the backend cannot be loaded.
    """
    _check_settings(min_face_size, dominance)
    if workers < 1:
        raise InvalidParameter(f"workers must be at least 1, got {workers}")
    backend = backend_from_spec(spec)  # fail fast here, with the real message
    workers = min(workers, len(paths))
    if workers <= 1:
        return [_analyse_or_record(backend, p, min_face_size, dominance, embed) for p in paths]
    # dlib on Linux: fork, so workers inherit the loaded models (no reload, no re-import);
    # they only run dlib, numpy and Pillow, which hold no locks across fork. ONNX Runtime
    # keeps thread pools that do not survive fork, so insightface (and every backend off
    # Linux) uses spawn, and each worker loads the models itself.
    method = "fork" if sys.platform.startswith("linux") and spec.name == "dlib" else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(spec, min_face_size, dominance, embed),
    ) as pool:
        return list(pool.map(_analyse_in_worker, paths, chunksize=1))
