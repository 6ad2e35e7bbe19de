"""Writing a training set to disk: charstudio's layout, kohya's layout, and the swap.

charstudio's layout (docs/ARCHITECTURE.md, "Data root")::

    training_sets/<name>/images/<name>_001.png
    training_sets/<name>/captions/<name>_001.txt
    training_sets/<name>/config.json

kohya sd-scripts' layout (on request), beside it::

    training_sets/<name>/kohya/<repeats>_<trigger> <class>/<name>_001.png + .txt
    training_sets/<name>/kohya/dataset.toml      caption_extension = ".txt"

sd-scripts reads ``.caption`` files unless told otherwise, silently training without
captions (docs/reference/lora-trainers.md, section 4.2), so the TOML names ``.txt`` explicitly.

A new set is written into a hidden folder beside the current one and swapped in at the
end (:func:`swap_in`), so an interrupted run leaves the previous set intact and current.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from charstudio.errors import storage_errors

__all__ = ["SetWriter", "content_hash", "recover", "remove_stale_staging", "swap_in"]


class SetWriter:
    """Writes one training set into a fresh staging folder."""

    def __init__(self, *, final_dir: Path, name: str) -> None:
        self.final_dir = final_dir
        self.name = name
        with storage_errors(final_dir):
            final_dir.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=final_dir.parent))
            (self.staging / "images").mkdir()
            (self.staging / "captions").mkdir()

    def add(self, index: int, image: Image.Image, caption: str) -> str:
        """Save image ``index`` (1-based) and its caption; returns the image file name."""
        stem = f"{self.name}_{index:03d}"
        with storage_errors(self.staging):
            # zlib level 1: about 4x faster than the default 6 for a few % larger files.
            image.save(self.staging / "images" / f"{stem}.png", format="PNG", compress_level=1)
            caption_file = self.staging / "captions" / f"{stem}.txt"
            caption_file.write_text(caption + "\n", encoding="utf-8")
        return f"{stem}.png"

    def write_json(self, relative: str, data: dict[str, Any]) -> None:
        with storage_errors(self.staging / relative):
            (self.staging / relative).write_text(
                json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )

    def write_kohya(
        self, *, repeats: int, trigger_word: str, class_word: str, resolution: int, bucket: bool
    ) -> Path:
        """Copy images and captions into kohya's ``<repeats>_<trigger> <class>`` folder.

        The images are already cut to their final sizes, so the TOML tells sd-scripts the
        same resolution and, for bucketed sets, buckets that never upscale (its
        ``bucket_no_upscale``) on the same 64 px grid — it then trains them as they are.
        """
        with storage_errors(self.staging / "kohya"):
            return self._write_kohya(
                repeats=repeats,
                trigger_word=trigger_word,
                class_word=class_word,
                resolution=resolution,
                bucket=bucket,
            )

    def _write_kohya(
        self, *, repeats: int, trigger_word: str, class_word: str, resolution: int, bucket: bool
    ) -> Path:
        root = self.staging / "kohya"
        concept = root / f"{repeats}_{trigger_word} {class_word}".rstrip()
        concept.mkdir(parents=True)
        for image in sorted((self.staging / "images").iterdir()):
            shutil.copyfile(image, concept / image.name)
            caption = self.staging / "captions" / f"{image.stem}.txt"
            shutil.copyfile(caption, concept / caption.name)
        final_concept = self.final_dir / "kohya" / concept.name
        (root / "dataset.toml").write_text(
            "# kohya sd-scripts dataset config: train_network.py --dataset_config dataset.toml\n"
            "[general]\n"
            'caption_extension = ".txt"\n'
            "keep_tokens = 1  # the trigger word stays first when captions are shuffled\n"
            f"resolution = {resolution}\n"
            + (
                "enable_bucket = true\nbucket_no_upscale = true\nbucket_reso_steps = 64\n"
                f"min_bucket_reso = 256\nmax_bucket_reso = {2 * resolution}\n"
                if bucket
                else "enable_bucket = false\n"
            )
            + "\n"
            "[[datasets]]\n"
            "\n"
            "  [[datasets.subsets]]\n"
            f"  image_dir = {json.dumps(str(final_concept))}\n"
            f"  num_repeats = {repeats}\n"
            f"  class_tokens = {json.dumps(f'{trigger_word} {class_word}'.strip())}\n",
            encoding="utf-8",
        )
        return self.final_dir / "kohya"

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def content_hash(folder: Path, settings: dict[str, Any]) -> str:
    """SHA-256 over every image and caption (names and bytes, sorted) and the settings."""
    digest = hashlib.sha256()
    for sub in ("images", "captions"):
        for path in sorted((folder / sub).iterdir()):
            digest.update(f"{sub}/{path.name}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def swap_in(staging: Path, final_dir: Path) -> None:
    """Replace ``final_dir`` with ``staging``: two renames, the old set removed last.

    A crash between the renames leaves ``<name>.previous`` beside a missing ``<name>``;
    :func:`recover` puts it back on the next run.
    """
    previous = final_dir.with_name(final_dir.name + ".previous")
    recover(final_dir)
    with storage_errors(final_dir):
        if final_dir.exists():
            final_dir.rename(previous)
        staging.rename(final_dir)
    shutil.rmtree(previous, ignore_errors=True)


def recover(final_dir: Path) -> None:
    """Undo a swap that was cut off between its two renames."""
    previous = final_dir.with_name(final_dir.name + ".previous")
    if previous.exists() and not final_dir.exists():
        previous.rename(final_dir)
    elif previous.exists():
        shutil.rmtree(previous, ignore_errors=True)


def remove_stale_staging(final_dir: Path) -> None:
    """Delete staging folders an interrupted run left behind (call under the character lock)."""
    for stale in final_dir.parent.glob(f".{final_dir.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
