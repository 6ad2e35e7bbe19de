"""Reference-image rows and the records the library hands out for them."""

from __future__ import annotations

from pathlib import Path

from charstudio.library.images import ImageInfo
from charstudio.library.models import ReferenceImage
from charstudio.library.types import ImportedImage, ReferenceInfo

__all__ = ["imported_record", "reference_info", "reference_row"]


def reference_row(info: ImageInfo) -> ReferenceImage:
    return ReferenceImage(
        sha256=info.sha256,
        original_name=info.path.name[:512],
        format=info.format,
        suffix=info.suffix,
        size_bytes=info.size_bytes,
        width=info.width,
        height=info.height,
    )


def imported_record(info: ImageInfo, destination: Path) -> ImportedImage:
    return ImportedImage(
        sha256=info.sha256,
        original_name=info.path.name,
        source=str(info.path),
        stored_path=str(destination),
        width=info.width,
        height=info.height,
        size_bytes=info.size_bytes,
        format=info.format,
    )


def reference_info(ref: ReferenceImage, path: Path) -> ReferenceInfo:
    return ReferenceInfo(
        id=ref.id,
        sha256=ref.sha256,
        original_name=ref.original_name,
        stored_path=str(path),
        width=ref.width,
        height=ref.height,
        size_bytes=ref.size_bytes,
        format=ref.format,
        added_at=ref.added_at,
        face_status=ref.face_status,
        face_details=dict(ref.face_details or {}),
        ipadapter_reference=ref.ipadapter_reference,
        caption_edit=ref.caption_edit,
    )
