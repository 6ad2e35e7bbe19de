"""QC throughput: images per second checked, beside the face analysis it is built on.

In one command, on the same images (the eight test photographs padded to a square and
resized to 512 and 1024 px, in memory), one process:

1. baseline: the face stage's own ``analyse_image`` (detect + embed every face), what
   ``faces score`` costs per image;
2. QC, identity alone (``QualityChecker(soundness=False)``): the baseline plus the
   dominance / several-people rule and the comparison with the identity;
3. QC, identity + soundness (black, blank, exposure, face blur).

Prompt adherence is not in the default run (no model is shipped); the issue's target is
QC under about 0.15 s per image on this CPU for identity + soundness.

Usage: ``python bench/qc.py [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from charstudio.config import load_settings
from charstudio.faces.analysis import analyse_image
from charstudio.faces.registry import load_backend
from charstudio.qc.checker import QualityChecker
from charstudio.qc.identity import CharacterIdentity, load_identity
from charstudio.qc.types import QCRequest
from charstudio.services import build_services

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
CHARACTER = ["obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg"]


def square(path: Path, side: int) -> np.ndarray:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    edge = max(image.size)
    canvas = Image.new("RGB", (edge, edge), (128, 128, 128))
    canvas.paste(image, ((edge - image.width) // 2, (edge - image.height) // 2))
    return np.asarray(canvas.resize((side, side), Image.Resampling.LANCZOS))


def make_identity(home: Path) -> CharacterIdentity:
    services = build_services(load_settings(home=home))
    try:
        services.library.create("obama", [DATA / f for f in CHARACTER])
        services.faces.extract("obama")
        return load_identity(services.store.embeddings_dir, "obama")
    finally:
        services.close()


def rate(run: Callable[[np.ndarray], object], images: list[np.ndarray], repeat: int) -> float:
    run(images[0])  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        for image in images:
            run(image)
    return len(images) * repeat / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    backend = load_backend("dlib")
    with tempfile.TemporaryDirectory() as home:
        identity = make_identity(Path(home))
    request = QCRequest(character="obama", prompt="a red dress", variation="outfit")
    identity_only = QualityChecker(backend=backend, identity=identity, soundness=False)
    full = QualityChecker(backend=backend, identity=identity)
    photos = sorted(DATA.glob("*.jpg"))
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{'size':>6}  {'analyse (baseline)':>20}  {'QC identity':>20}  {'QC id + soundness':>20}"
    )
    for side in (512, 1024):
        images = [square(p, side) for p in photos]
        figures = [
            rate(lambda im: analyse_image(backend, im, embed="all"), images, args.repeat),
            rate(lambda im: identity_only.check(im, request), images, args.repeat),
            rate(lambda im: full.check(im, request), images, args.repeat),
        ]
        cells = [f"{r:6.2f}/s {1000 / r:6.0f} ms" for r in figures]
        print(f"{side:>5}px  " + "  ".join(f"{c:>20}" for c in cells))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
