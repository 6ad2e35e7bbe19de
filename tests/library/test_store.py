"""The asset store: layout, atomic writes, read-only data roots, concurrent writers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from charstudio.errors import DataDirNotWritable
from charstudio.library.store import AssetStore, atomic_write_bytes
from charstudio.services import Services
from tests.conftest import snapshot, write_image


def test_layout_matches_the_design(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "home")
    store.create_layout()
    made = sorted(str(p.relative_to(store.home)) for p in store.home.rglob("*") if p.is_dir())
    assert made == [
        "character_data",
        "character_data/embeddings",
        "character_data/lora_models",
        "character_data/references",
        "character_data/training_sets",
        "locks",
        "outputs",
        "workflows",
        "workflows/generated",
        "workflows/templates",
    ]


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"data")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"data"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]


def test_copy_in_is_idempotent(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "home")
    source = write_image(tmp_path / "a.png")
    target = store.references_dir("yuki") / "x.png"
    assert store.copy_in(source, target) is True
    assert store.copy_in(source, target) is False
    assert target.read_bytes() == source.read_bytes()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` truly read-only, even for root (who ignores permission bits)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True
        )
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_data_root_is_refused_with_the_fix(
    services: Services, refs: Path, home: Path
) -> None:
    services.library.create("yuki", [refs / "yuki_0.png"])
    services.close()
    before = snapshot(home)
    with read_only(home):
        store = AssetStore(home)
        with pytest.raises(DataDirNotWritable) as info:
            store.ensure_writable()
        assert f"the data directory {home} is not writable" in str(info.value)
        assert "set CHARSTUDIO_HOME to a writable folder" in str(info.value)
        # The whole command too, in a fresh process: exit 1, one line, nothing changed.
        proc = subprocess.run(
            [sys.executable, "-m", "charstudio", "character", "import", "yuki", str(refs)],
            env={**os.environ, "CHARSTUDIO_HOME": str(home)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("error: the data directory")
        assert len(proc.stderr.strip().splitlines()) == 1
    assert snapshot(home) == before


def test_two_processes_adding_to_one_character_at_once(
    services: Services, tmp_path: Path, home: Path
) -> None:
    """Both imports land, overlapping images are stored once, no temporary files remain."""
    services.library.create("yuki", [write_image(tmp_path / "seed.png", color=(9, 9, 9))])
    services.close()
    batches = []
    for b in range(2):
        folder = tmp_path / f"batch{b}"
        for i in range(6):
            # images 3-5 are in both batches
            write_image(folder / f"img{i}.png", color=(b * 100 + i if i < 3 else i, 50, 50))
        batches.append(folder)
    env = {**os.environ, "CHARSTUDIO_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "charstudio", "character", "import", "yuki", str(f), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in batches
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = [json.loads(out) for out, _ in outputs]
    added = sum(len(r["added"]) for r in results)
    duplicates = sum(len(r["duplicates"]) for r in results)
    assert (added, duplicates) == (9, 3)
    second = Services(settings=services.settings)
    detail = second.library.show("yuki")
    assert len(detail.references) == 10
    assert len({r.sha256 for r in detail.references}) == 10
    stored = sorted(p.name for p in second.store.references_dir("yuki").iterdir())
    assert stored == sorted(f"{r.sha256}.png" for r in detail.references)
    second.close()


def test_two_processes_creating_the_same_character(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "refs"
    for i in range(3):
        write_image(folder / f"{i}.png", color=(i, 1, 1))
    env = {**os.environ, "CHARSTUDIO_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "charstudio", "init"], env=env, check=True, capture_output=True
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "charstudio", "character", "add", name, "--images", str(folder)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("yuki", "YUKI")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    loser = next(err for (_, err), p in zip(outputs, procs, strict=True) if p.returncode == 1)
    assert "already exists (names ignore case)" in loser
