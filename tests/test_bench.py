"""The benches run end to end at a tiny size, so that one that drifts from the package's API
fails here rather than in front of a reader of the README (a new job parameter once made
every API bench job fail and the bench wait 600 s): each must exit 0 and print figures that
count what was asked for, with rates above zero. Not here: ``faces.py`` (its baseline,
face_recognition, is not a dependency), ``train.py`` (three processes that load torch: over
a minute even with ``--size tiny``). ``scale.py`` needs PostgreSQL and Redis: it runs in
tests/jobs/test_scale.py, which the servers' run covers."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(tmp_path: Path, script: str, *args: str) -> str:
    """Run ``bench/<script>`` with ``args``; its stdout, after checking it exited 0. Without
    the test run's ``CHARSTUDIO_*`` settings (its PostgreSQL database, on the servers' run):
    a bench makes its own libraries, as when it is run from the README."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARSTUDIO_")}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rate(text: str) -> float:
    value = float(text)
    assert math.isfinite(value) and value > 0, text
    return value


def test_api_bench_runs_and_loses_no_job(tmp_path: Path) -> None:
    out = bench(
        tmp_path, "api.py", "--requests", "60", "--concurrency", "5", "--jobs", "12",
        "--rounds", "1",
    )  # fmt: skip
    assert "GET /api/v1/characters:" in out
    counts = r"queue: (\d+) submitted, (\d+) ran, (\d+) lost, (\d+) run twice"
    queue = re.search(counts, out)
    assert queue is not None, out
    assert queue.groups() == ("12", "12", "0", "0")


def test_library_bench_imports_every_image(tmp_path: Path) -> None:
    out = bench(tmp_path, "library.py", "--images", "12", "--size", "128")
    assert out.startswith("12 JPEGs of 128x128"), out
    rows = dict(re.findall(r"^(\S.*?)\s{2,}([\d.]+)$", out, re.MULTILINE))
    assert set(rows) == {
        "shutil.copyfile (floor)", "Pillow decode + copy (baseline)", "charstudio character add"
    }, out  # fmt: skip
    assert all(rate(value) for value in rows.values())


def test_comfyui_bench_runs_every_job_once(tmp_path: Path) -> None:
    out = bench(tmp_path, "comfyui.py", "--jobs", "5", "--pool-jobs", "12", "--servers", "2")
    overhead = re.search(r"^charstudio overhead\s+(-?[\d.]+)\s+(-?[\d.]+)$", out, re.MULTILINE)
    assert overhead is not None and all(map(math.isfinite, map(float, overhead.groups()))), out
    runs = re.findall(
        r"^  (.+?)\s+(\d+) images in\s+([\d.]+) s =\s+([\d.]+) jobs/s; lost (\d+), "
        r"duplicated (\d+)$", out, re.MULTILINE,
    )  # fmt: skip
    assert [label for label, *_ in runs] == ["bare, round-robin + poll", "charstudio pool"], out
    for _, images, seconds, per_s, lost, duplicated in runs:
        assert (images, lost, duplicated) == ("12", "0", "0")
        rate(seconds), rate(per_s)
    per_server = re.search(r"charstudio per server: (\d+), (\d+)$", out, re.MULTILINE)
    assert per_server is not None and sum(map(int, per_server.groups())) == 12, out


def test_generate_bench_times_both_sides(tmp_path: Path) -> None:
    out = bench(
        tmp_path, "generate.py", "--size", "tiny", "--resolution", "64", "--steps", "2",
        "--images", "1", "--threads", "1", "--json",
    )  # fmt: skip
    result = json.loads(out[out.index("{") :])
    assert (result["size"], result["images"], result["steps"]) == ("tiny", 1, 2)
    per_image = result["seconds_per_image"]
    assert set(per_image) == {"charstudio", "diffusers", "charstudio lora_only"}
    first_calls = result["first_call_s"].values()
    assert all(rate(str(value)) for value in [*per_image.values(), *first_calls])
    assert all(len(times) == 1 for times in result["all_seconds"].values())
    assert math.isfinite(result["charstudio_vs_diffusers"])


def test_qc_bench_rates_every_checker(tmp_path: Path) -> None:
    out = bench(
        tmp_path, "qc.py", "--sizes", "256", "--photos", "2", "--repeat", "1", "--no-full-clip"
    )
    header = re.search(r"^\s+size\s+(.+)$", out, re.MULTILINE)
    assert header is not None, out
    columns = re.split(r"\s{2,}", header.group(1).strip())
    expected = ["analyse (baseline)", "QC identity", "QC id + soundness", "+ tiny CLIP"]
    assert columns == expected, out
    row = re.search(r"^\s+256px\s+(.+)$", out, re.MULTILINE)
    assert row is not None, out
    rates = re.findall(r"([\d.]+)/s\s+(\d+) ms", row.group(1))
    assert len(rates) == 4 and all(rate(per_s) and rate(ms) for per_s, ms in rates), out


def test_dataset_bench_keeps_every_photo(tmp_path: Path) -> None:
    out = bench(tmp_path, "dataset.py", "--resolution", "256", "--sources", "1")
    rows = re.findall(
        r"^(12 MP phone photos|originals \(~0\.3 MP\))\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)"
        r"\s+([\d.]+)((?:\s+-?\d+%)+)$", out, re.MULTILINE,
    )  # fmt: skip
    assert [r[0] for r in rows] == ["12 MP phone photos", "originals (~0.3 MP)"], out
    for _, count, _, kept, total, per_image, shares in rows:
        assert (count, kept) == ("5", "5")
        rate(total), rate(per_image)
        assert all(int(s) > 0 for s in re.findall(r"(-?\d+)%", shares)[:3]), shares
    assert re.search(r"^12 MP: [\d.]+ s per image \((meets|misses) the < 1 s target\)$", out, re.M)
