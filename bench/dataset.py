"""Training-set preparation speed on phone-sized photos (issue 4's target: < 1 s per 12 MP image
on one core).

Fifteen 4000 x 3000 (12 MP) JPEGs are made by upscaling the real test portraits (three
photos of one man, five variants each: as is, mirrored, two off-centre crops and a small
rotation, so that they are not near-duplicates of each other), added to a fresh library,
and prepared end to end with ``dataset prepare`` on one core (``face_workers=1``: face
analysis in this process). A second run on the same 15 images with the 512 px originals
they were made from is the baseline, in the same command: what the same pipeline costs
when nothing needs decoding at 12 MP.

The split comes from cProfile over the whole run (cumulative time, so nested work is
counted once under the outermost phase listed):

* decoding — ``PIL.ImageFile.ImageFile.load`` (JPEG decode) wherever it is called;
* face detection and embedding — the face backend's ``detect`` and ``embed``;
* writing — PNG encoding of the set, captions, contact sheets (``SetWriter.add``,
  ``draw_sheets``);
* other — curation hashes, crops, resizes, database, everything else.

Usage: ``python bench/dataset.py [--resolution 768] [--sources 3] [--keep DIR]``
(``--sources 1``: five photos of each kind, a quick check that the bench still runs)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from charstudio.config import load_settings
from charstudio.dataset import DatasetConfig
from charstudio.services import build_services

PHOTOS = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
SOURCES = ["obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg"]
PHONE = (4000, 3000)

# (file, function name) pairs from pstats that make up each phase.
PHASES = {
    "decoding": [("ImageFile.py", "load")],
    "face detection + embedding": [("dlib_backend.py", "detect"), ("dlib_backend.py", "embed")],
    "writing": [("layout.py", "add"), ("sheets.py", "draw_sheets")],
}


def variants(photo: Image.Image) -> list[Image.Image]:
    """Five views of one photo that are not near-duplicates of each other."""
    w, h = photo.size
    return [
        photo,
        ImageOps.mirror(photo),
        photo.crop((0, 0, int(w * 0.8), int(h * 0.85))),
        photo.crop((int(w * 0.15), int(h * 0.1), w, h)),
        photo.rotate(8, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white"),
    ]


def make_photos(folder: Path, *, phone: bool, sources: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for source in SOURCES[:sources]:
        with Image.open(PHOTOS / source) as img:
            photo = img.convert("RGB")
        for i, view in enumerate(variants(photo)):
            if phone:
                # Fit into 4000 x 3000 (or 3000 x 4000) the way a phone frames it.
                size = PHONE if view.width >= view.height else PHONE[::-1]
                view = ImageOps.fit(view, size, Image.Resampling.BICUBIC)
            path = folder / f"{Path(source).stem}_{i}.jpg"
            view.save(path, quality=92)
            paths.append(path)
    return paths


def run(root: Path, photos: list[Path], resolution: int) -> tuple[float, pstats.Stats, int]:
    settings = load_settings(home=root / "home", face_workers=1)
    services = build_services(settings)
    services.init()
    services.library.create("obama", photos)
    config = DatasetConfig.parse(resolution=resolution, max_upscale=4.0)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    result = services.datasets.prepare("obama", config)
    profile.disable()
    seconds = time.perf_counter() - start
    services.close()
    return seconds, pstats.Stats(profile), len(result.kept)


def phase_seconds(stats: pstats.Stats) -> dict[str, float]:
    table = stats.stats  # type: ignore[attr-defined]  # pstats keeps its data here
    found = {}
    for phase, functions in PHASES.items():
        found[phase] = sum(
            cumulative
            for (file, _, name), (_, _, _, cumulative, _) in table.items()
            if (Path(file).name, name) in functions
        )
    return found


def check(label: str, kept: int, phases: dict[str, float]) -> None:
    """Stop on a run that measured nothing: no image kept, or a phase whose functions the
    profile no longer finds (renamed in the package: its share would read 0 %)."""
    if not kept:
        raise SystemExit(f"{label}: dataset prepare kept no image")
    missing = [phase for phase, seconds in phases.items() if seconds <= 0]
    if missing:
        raise SystemExit(f"{label}: no time found for {missing}; PHASES names {PHASES}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=768)
    parser.add_argument("--sources", type=int, default=3, choices=[1, 2, 3], help="portraits used")
    parser.add_argument("--keep", type=Path, help="keep the generated photos and sets here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        rows = []
        for label, phone in (("12 MP phone photos", True), ("originals (~0.3 MP)", False)):
            folder = root / ("phone" if phone else "small")
            photos = make_photos(folder, phone=phone, sources=args.sources)
            megapixels = sum(Image.open(p).width * Image.open(p).height for p in photos) / 1e6
            seconds, stats, kept = run(root / label.split()[0], photos, args.resolution)
            phases = phase_seconds(stats)
            rows.append((label, len(photos), megapixels, seconds, kept, phases))
            check(label, kept, phases)

    print(f"dataset prepare, {args.resolution} px, one core (face_workers=1)\n")
    header = f"{'images':<22}{'n':>3}{'MP':>7}{'kept':>6}{'s total':>9}{'s/image':>9}"
    print(header + "".join(f"{p[:14]:>16}" for p in PHASES) + f"{'other':>10}")
    for label, n, mp, seconds, kept, phases in rows:
        shares = "".join(f"{s / seconds:>15.0%} " for s in phases.values())
        other = 1 - sum(phases.values()) / seconds
        print(
            f"{label:<22}{n:>3}{mp:>7.0f}{kept:>6}{seconds:>9.2f}{seconds / n:>9.2f}"
            f"{shares}{other:>10.0%}"
        )
    phone_per_image = rows[0][3] / rows[0][1]
    verdict = "meets" if phone_per_image < 1.0 else "misses"
    print(f"\n12 MP: {phone_per_image:.2f} s per image ({verdict} the < 1 s target)")


if __name__ == "__main__":
    main()
