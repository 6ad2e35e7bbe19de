"""QC throughput: images per second checked, beside the face analysis it is built on.

In one command, on the same images (the eight test photographs padded to a square and
resized to 512 and 1024 px, in memory), one process:

1. baseline: the face stage's own ``analyse_image`` (detect + embed every face), what
   ``faces score`` costs per image;
2. QC, identity alone (``QualityChecker(soundness=False)``): the baseline plus the
   dominance / several-people rule and the comparison with the identity;
3. QC, identity + soundness (black, blank, exposure, face blur);
4. QC, identity + soundness + CLIP prompt adherence with a tiny CLIP (the scoring code's
   own cost: preprocessing, the subject and neutral captions, the softmax rule);
5. the same with a CLIP of openai/clip-vit-large-patch14's size (ViT-L/14, 428 M
   parameters) with random weights, built from its config: what a real model costs
   (``--no-full-clip`` skips it: building and saving it takes a minute and 1.7 GB).

The issue's target is QC under about 0.15 s per image on this CPU for identity +
soundness (under 10 % of a GPU's SD1.5 generation).

Usage: ``python bench/qc.py [--repeat N] [--no-full-clip] [--sizes 512,1024] [--photos 8]``
(``--sizes 512 --photos 2 --repeat 1 --no-full-clip``: a quick check that it still runs)
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
from charstudio.qc.clip import ClipScorer
from charstudio.qc.identity import CharacterIdentity, load_identity
from charstudio.qc.types import CheckName, QCRequest
from charstudio.services import build_services
from charstudio.training.tokenizer_files import write_clip_tokenizer

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


def write_clip(folder: Path, *, full: bool) -> Path:
    """A CLIPModel folder with random weights: tiny, or ViT-L/14's size."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    if full:  # openai/clip-vit-large-patch14
        text = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}
        text |= {"num_hidden_layers": 12}
        vision = {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16}
        vision |= {"num_hidden_layers": 24, "image_size": 224, "patch_size": 14}
        projection, side = 768, 224
    else:
        text = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4}
        text |= {"num_hidden_layers": 2}
        vision = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4}
        vision |= {"num_hidden_layers": 2, "image_size": 32, "patch_size": 8}
        projection, side = 32, 32
    text |= {"vocab_size": 49408, "max_position_embeddings": 77, "projection_dim": projection}
    vision |= {"projection_dim": projection}
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection)
    CLIPModel(config).save_pretrained(folder)
    write_clip_tokenizer(folder)
    CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    ).save_pretrained(folder)
    return folder


def rate(run: Callable[[np.ndarray], object], images: list[np.ndarray], repeat: int) -> float:
    run(images[0])  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        for image in images:
            run(image)
    return len(images) * repeat / (time.perf_counter() - start)


def verify(checkers: dict[str, QualityChecker], request: QCRequest) -> None:
    """Stop unless every checker measures what its row says on a photo of the character:
    a check that comes back ``not_checked`` (a scorer that no longer loads, an identity
    that no longer matches) would time a skipped check."""
    image = square(DATA / CHARACTER[0], 512)
    for label, checker in checkers.items():
        result = checker.check(image, request)
        wanted: list[CheckName] = (
            ["identity", "adherence_clip"] if "CLIP" in label else ["identity"]
        )
        for name in wanted:
            entry = result.get(name)
            if entry is None or entry.status == "not_checked" or entry.score is None:
                raise SystemExit(f"{label}: the {name} check measured nothing: {entry}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-full-clip", action="store_true", help="skip the ViT-L/14 row")
    parser.add_argument("--sizes", default="512,1024", help="square sides, comma-separated")
    parser.add_argument("--photos", type=int, default=8, help="how many test photographs")
    args = parser.parse_args()
    sides = [int(side) for side in args.sizes.split(",")]
    if args.repeat < 1 or args.photos < 1 or min(sides) < 64:
        parser.error("needs --repeat >= 1, --photos >= 1 and sizes >= 64")
    backend = load_backend("dlib")
    scratch = tempfile.TemporaryDirectory()
    identity = make_identity(Path(scratch.name) / "home")
    request = QCRequest(character="obama", prompt="a red dress", variation="outfit")
    checkers = {
        "QC identity": QualityChecker(backend=backend, identity=identity, soundness=False),
        "QC id + soundness": QualityChecker(backend=backend, identity=identity),
    }
    clips = {"+ tiny CLIP": False} | ({} if args.no_full_clip else {"+ ViT-L/14 CLIP": True})
    for label, full in clips.items():
        folder = write_clip(Path(scratch.name) / label.replace(" ", "_"), full=full)
        scorer = ClipScorer(folder)
        checkers[label] = QualityChecker(backend=backend, identity=identity, adherence=[scorer])
    verify(checkers, request)
    photos = sorted(DATA.glob("*.jpg"))[: args.photos]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'size':>6}  " + "  ".join(f"{c:>20}" for c in ["analyse (baseline)", *checkers]))
    for side in sides:
        images = [square(p, side) for p in photos]
        figures = [rate(lambda im: analyse_image(backend, im, embed="all"), images, args.repeat)]
        for checker in checkers.values():
            figures.append(rate(lambda im, c=checker: c.check(im, request), images, args.repeat))
        cells = [f"{r:6.2f}/s {1000 / r:6.0f} ms" for r in figures]
        print(f"{side:>5}px  " + "  ".join(f"{c:>20}" for c in cells))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    scratch.cleanup()


if __name__ == "__main__":
    main()
