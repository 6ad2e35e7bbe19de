"""Import throughput: `charstudio character add` against plain copies, in one process.

    .venv/bin/python bench/library.py [--images 200] [--size 1024]

Prints images per second for: a plain ``shutil.copyfile`` of every file (the floor any
import pays), Pillow decode + copy (what a careful script does), and charstudio's import
(header check, full decode, SHA-256, content-addressed atomic copy, one SQLite transaction).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from charstudio.config import load_settings
from charstudio.services import build_services


def make_images(folder: Path, count: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        base = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.Resampling.BILINEAR)
        path = folder / f"img_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def timed(label: str, count: int, run: object) -> tuple[str, float]:
    start = time.perf_counter()
    run()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    return label, count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=1024, help="side of each JPEG, pixels")
    args = parser.parse_args()
    if args.images < 1 or args.size < 64:
        parser.error("needs --images >= 1 and --size >= 64")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_images(root / "src", args.images, args.size)

        def plain_copy() -> None:
            out = root / "copy"
            out.mkdir()
            for p in paths:
                shutil.copyfile(p, out / p.name)

        def pillow_copy() -> None:
            out = root / "pil"
            out.mkdir()
            for p in paths:
                with Image.open(p) as img:
                    img.load()
                shutil.copyfile(p, out / p.name)

        def charstudio_import() -> None:
            services = build_services(load_settings(home=root / "home"))
            result = services.library.create("bench", [root / "src"])
            services.close()
            if len(result.added) != len(paths):  # a rate over fewer images would flatter it
                raise SystemExit(
                    f"charstudio imported {len(result.added)} of {len(paths)} images "
                    f"({len(result.duplicates)} duplicates, {len(result.skipped)} skipped)"
                )

        rows = [
            timed("shutil.copyfile (floor)", len(paths), plain_copy),
            timed("Pillow decode + copy (baseline)", len(paths), pillow_copy),
            timed("charstudio character add", len(paths), charstudio_import),
        ]
    print(f"{args.images} JPEGs of {args.size}x{args.size}")
    print(f"{'method':<36}{'images/s':>10}")
    for label, rate in rows:
        print(f"{label:<36}{rate:>10.1f}")


if __name__ == "__main__":
    main()
