"""Finding and checking the image files a user hands over, before anything is written.

Import is two-phase: :func:`scan_images` reads and checks every file (the slow part, done
outside any lock or transaction), then the library copies the accepted files and records
them in one transaction. A bad file stops the import before anything changes, unless the
caller asked to skip bad files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from charstudio.errors import NothingToImport, UnsupportedImage, UsageError
from charstudio.library.images import IMAGE_SUFFIXES, ImageInfo, probe_image
from charstudio.library.types import ImageLimits, ProgressCallback, SkippedFile

__all__ = ["ScanResult", "collect_files", "scan_images"]


@dataclass(frozen=True)
class ScanResult:
    """Images that passed the checks, and files left out with the reason."""

    images: list[ImageInfo]
    skipped: list[SkippedFile]


def collect_files(paths: list[Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files and folders (recursively, in a stable order) into candidate files.

    Files named explicitly are always candidates; inside folders only files with an image
    suffix are, and hidden files are ignored.

    Raises:
        UsageError: a path does not exist or a folder cannot be listed.
        NothingToImport: no candidate files at all.
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder; check the path")
        if path.is_dir():
            found, left_out = _walk(path)
            if not found:
                raise NothingToImport(
                    f"{path}: folder holds no image files (PNG, JPEG, WEBP, BMP, TIFF); "
                    "check the path"
                )
            files.extend(found)
            skipped.extend(left_out)
        else:
            files.append(path)
    if not files:
        where = ", ".join(str(p) for p in paths) or "(no paths given)"
        raise NothingToImport(
            f"no image files found in {where}; give image files (PNG, JPEG, WEBP, BMP, TIFF) "
            "or folders that hold them"
        )
    return files, skipped


def _walk(folder: Path) -> tuple[list[Path], list[SkippedFile]]:
    found: list[Path] = []
    skipped: list[SkippedFile] = []

    def _raise(exc: OSError) -> None:
        raise UsageError(f"{exc.filename}: cannot list folder ({exc.strerror}); check permissions")

    for root, dirs, names in os.walk(folder, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
            else:
                skipped.append(SkippedFile(source=str(path), reason="not an image file name"))
    return found, skipped


def scan_images(
    paths: list[Path],
    *,
    limits: ImageLimits,
    skip_bad: bool = False,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Collect and fully decode every candidate image.

    Raises:
        UnsupportedImage: a file is not a usable image and ``skip_bad`` is false; the
            message names the first such file and how many others failed.
        UsageError, NothingToImport: see :func:`collect_files`.
    """
    files, skipped = collect_files(paths)
    images: list[ImageInfo] = []
    problems: list[str] = []
    for done, path in enumerate(files, start=1):
        try:
            images.append(
                probe_image(
                    path,
                    max_pixels=limits.max_pixels,
                    max_bytes=limits.max_bytes,
                    min_side=limits.min_side,
                )
            )
        except UnsupportedImage as exc:
            problems.append(str(exc))
            skipped.append(SkippedFile(source=str(path), reason=str(exc)))
        if progress is not None:
            progress(done, len(files), path.name)
    if problems and not skip_bad:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UnsupportedImage(
            f"{problems[0]}{more}; nothing was imported — fix or remove the file, "
            "or pass --skip-bad to import the others"
        )
    if not images:
        raise NothingToImport(
            f"none of the {len(files)} files is a usable image; nothing was imported"
        )
    return ScanResult(images=images, skipped=skipped)
