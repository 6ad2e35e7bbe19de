"""Issue 15: every OSError of a store write is a StorageError with advice by errno."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from charstudio.errors import DataDirNotWritable, DiskFull, StorageError
from charstudio.library.store import atomic_write_bytes


@pytest.mark.parametrize(
    ("code", "kind", "words", "status"),
    [
        (errno.ENOSPC, DiskFull, "free disk space or raise the quota", 507),
        (errno.EDQUOT, DiskFull, "free disk space or raise the quota", 507),
        (errno.EACCES, DataDirNotWritable, "fix the data root's permissions", 503),
        (errno.ENAMETOOLONG, StorageError, "use shorter names", 503),
    ],
)
def test_a_failed_write_is_the_storage_error_for_its_errno(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    kind: type[StorageError],
    words: str,
    status: int,
) -> None:
    def fail(self: Path, data: bytes) -> int:
        raise OSError(code, "refused")

    monkeypatch.setattr(Path, "write_bytes", fail)
    target = tmp_path / "a" / "b.bin"
    with pytest.raises(kind) as caught:
        atomic_write_bytes(target, b"x")
    assert type(caught.value) is kind
    assert words in str(caught.value) and str(target) in str(caught.value)
    assert caught.value.exit_code == 1 and caught.value.http_status == status
    assert list(target.parent.iterdir()) == []  # the temporary file is gone too
