"""Face analysis throughput: charstudio's dlib backend vs the face_recognition package.

Both use the same dlib models (HOG detector, 5-point landmarks, ResNet recognizer), on the
same images, in the same command. face_recognition runs as its README shows:
``load_image_file`` -> ``face_locations`` (HOG, upsample 1) -> ``face_encodings``, one
process. charstudio runs ``analyse_paths`` (detection on a copy with a 1024 px long side,
batched embeddings, a 2-process pool) embedding every face, as face_recognition does.

Agreement: per image, faces are matched greedily by box IoU >= 0.5; the table reports the
images where both found the same number of faces, the share of face_recognition's faces
charstudio also found, and the mean IoU of matched boxes.

Needs (bench only): ``pip install face_recognition==1.3.0 --no-deps``. Its
``face_recognition_models`` imports ``pkg_resources``, gone from setuptools >= 81; the bench
supplies the one function it calls instead of pinning an old setuptools.

Usage: ``python bench/faces.py [FOLDER] [--repeat N] [--workers N]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from charstudio.faces.analysis import analyse_paths
from charstudio.faces.registry import BackendSpec, backend_from_spec
from charstudio.faces.types import FaceBox
from charstudio.library.images import IMAGE_SUFFIXES


def _shim_pkg_resources() -> None:
    """face_recognition_models calls ``pkg_resources.resource_filename``; setuptools >= 81
    no longer ships pkg_resources, so give it the one function it uses."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import importlib.util
        import sys
        import types

        def resource_filename(package: str, resource: str) -> str:
            spec = importlib.util.find_spec(package)
            assert spec is not None and spec.submodule_search_locations
            return str(Path(next(iter(spec.submodule_search_locations))) / resource)

        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim


def run_face_recognition(paths: list[Path]) -> tuple[float, list[list[FaceBox]]]:
    import warnings

    _shim_pkg_resources()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources deprecation inside the package
        try:
            import face_recognition
        except ImportError as exc:
            raise SystemExit(
                f"the baseline is missing ({exc}): "
                ".venv/bin/pip install --no-deps face_recognition==1.3.0"
            ) from exc
    start = time.perf_counter()
    boxes = []
    for path in paths:
        image = face_recognition.load_image_file(str(path))
        locations = face_recognition.face_locations(image)
        face_recognition.face_encodings(image, locations)
        boxes.append([FaceBox(left, top, right, bottom) for top, right, bottom, left in locations])
    return time.perf_counter() - start, boxes


def run_charstudio(paths: list[Path], workers: int) -> tuple[float, list[list[FaceBox]]]:
    spec = BackendSpec(name="dlib")
    backend_from_spec(spec)  # model loading is not part of the throughput
    start = time.perf_counter()
    results = analyse_paths(spec, paths, workers=workers, embed="all")
    elapsed = time.perf_counter() - start
    return elapsed, [[f.face.box for f in r.faces] for r in results]


def agreement(
    ours: list[list[FaceBox]], theirs: list[list[FaceBox]]
) -> tuple[int, int, int, float]:
    same_count = found = total = 0
    ious: list[float] = []
    for mine, ref in zip(ours, theirs, strict=True):
        same_count += len(mine) == len(ref)
        total += len(ref)
        free = list(mine)
        for box in ref:
            best = max(free, key=box.iou, default=None)
            if best is not None and box.iou(best) >= 0.5:
                found += 1
                ious.append(box.iou(best))
                free.remove(best)
    return same_count, found, total, sum(ious) / len(ious) if ious else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("tests/data/faces"))
    parser.add_argument("--repeat", type=int, default=3, help="pass over the folder N times")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files or args.repeat < 1:
        parser.error(f"needs images in {args.folder} and --repeat >= 1")
    paths = files * args.repeat
    fr_time, fr_boxes = run_face_recognition(paths)
    cs_time, cs_boxes = run_charstudio(paths, args.workers)
    same, found, total, iou = agreement(cs_boxes[: len(files)], fr_boxes[: len(files)])
    if not found:  # nothing in common: one side no longer detects, the figures mean nothing
        raise SystemExit(
            f"no face found by both: charstudio {sum(map(len, cs_boxes))}, "
            f"face_recognition {sum(map(len, fr_boxes))} faces"
        )
    n = len(paths)
    print(f"{n} images ({len(files)} files x {args.repeat}) from {args.folder}\n")
    print(f"{'pipeline':<34}{'seconds':>9}{'images/s':>10}{'faces':>7}")
    rows = [
        ("face_recognition 1.3 (1 process)", fr_time, fr_boxes),
        (f"charstudio dlib ({args.workers} workers)", cs_time, cs_boxes),
    ]
    for label, seconds, boxes in rows:
        print(f"{label:<34}{seconds:>9.2f}{n / seconds:>10.2f}{sum(map(len, boxes)):>7}")
    print(f"\nspeed-up: {fr_time / cs_time:.2f}x")
    print(
        f"same face count: {same}/{len(files)} images; face_recognition's faces also found: "
        f"{found}/{total}; mean IoU of matched boxes: {iou:.3f}"
    )
    for path, mine, ref in zip(files, cs_boxes, fr_boxes, strict=False):
        if len(mine) != len(ref):
            print(f"  {path.name}: charstudio {len(mine)} face(s), face_recognition {len(ref)}")


if __name__ == "__main__":
    main()
