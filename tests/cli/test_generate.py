"""``charstudio generate`` and ``charstudio workflow`` end to end against a fake ComfyUI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.fake_comfyui import FakeComfyUI, free_port
from tests.conftest import CliRunner


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI().start()
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", fake.url)
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_CHECKPOINT", "rand_sd15.safetensors")
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_REQUEST_TIMEOUT_S", "3")
    yield fake
    fake.stop()


@pytest.fixture
def yuki(cli: CliRunner, refs: Path) -> str:
    assert cli("character", "add", "yuki", "--images", str(refs)).code == 0
    return "yuki"


def test_generate_prints_output_paths(cli: CliRunner, yuki: str, server: FakeComfyUI) -> None:
    result = cli("generate", yuki, "red dress", "--variation", "outfit", "--seed", "7")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(
        "yuki: 1 image(s) with img2img, 512x512, 30 steps dpmpp_2m/karras cfg 7.5, on comfyui, job "
    )
    job = lines[0].rsplit(" ", 1)[1]
    assert f"outputs/yuki/{job}/yuki_{job}_01_7.png" in result.out
    assert server.url in result.out


def test_generate_json(cli: CliRunner, yuki: str, server: FakeComfyUI) -> None:
    result = cli(
        "generate",
        yuki,
        "snowy street",
        "--variation",
        "background",
        "--count",
        "2",
        "--seed",
        "40",
        "--json",
    )
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [i["seed"] for i in report["images"]] == [40, 41]
    assert all(Path(i["path"]).is_file() for i in report["images"])
    assert report["method"] == "img2img" and report["params"]["denoise"] == 0.4


def test_workflow_print_builds_without_sending(
    cli: CliRunner, yuki: str, server: FakeComfyUI
) -> None:
    result = cli("workflow", yuki, "red dress", "--variation", "outfit", "--seed", "5", "--print")
    assert result.code == 0, result.err
    graph = json.loads(result.out)
    classes = [node["class_type"] for node in graph.values()]
    assert classes[0] == "CheckpointLoaderSimple" and classes[-1] == "SaveImage"
    assert "VAEEncode" in classes and server.prompts_received == []
    summary = cli("workflow", yuki, "red dress", "--seed", "5")
    reference = json.loads(cli("workflow", yuki, "red dress", "--seed", "5", "--json").out)
    assert reference["reference_input"] == "full" and len(reference["uploads"]) == 1
    [(local, remote)] = reference["uploads"].items()
    assert summary.out == (
        "yuki: 9-node img2img graph, 512x512, seed 5, valid against the built-in catalog "
        f"(ComfyUI 0.3.64)\nIP-Adapter/img2img input: {local} (full)\n"
        f"LoadImage {remote} <- {local}\n"
    )


def test_bad_seed_exits_2(cli: CliRunner, yuki: str, server: FakeComfyUI) -> None:
    result = cli("generate", yuki, "red dress", "--seed", "-1")
    assert result.code == 2
    assert result.err.startswith("error: invalid generation request (seed: seed -1 is out of range")
    assert "leave the seed out for a random one" in result.err


def test_unreachable_server_exits_1(
    cli: CliRunner, yuki: str, server: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", url)
    result = cli("generate", yuki, "red dress", "--seed", "1")
    assert result.code == 1
    assert result.err.startswith(f"error: cannot reach ComfyUI at {url}")


def test_unknown_variation_exits_2(cli: CliRunner, yuki: str) -> None:
    result = cli("generate", yuki, "red dress", "--variation", "hat")
    assert result.code == 2 and "Invalid value for '--variation'" in result.err


def test_workflow_check_names_the_server(cli: CliRunner, yuki: str, server: FakeComfyUI) -> None:
    result = cli("workflow", yuki, "red dress", "--seed", "5", "--check")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == f"{server.url} has every node and model file it needs"
    assert server.prompts_received == []
    server.models["checkpoints"] = ["other.safetensors"]
    result = cli("workflow", yuki, "red dress", "--seed", "5", "--check")
    assert result.code == 1
    assert result.err.startswith(f"error: ComfyUI on {server.url} would refuse the workflow")
    assert "model 'rand_sd15.safetensors' not found" in result.err
    assert "put it in models/checkpoints (it has: other.safetensors)" in result.err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--size", "500x512"], "image size 500 is not a multiple of 8 of at least 64"),
        (["--size", "big"], "size 'big' does not parse: give WIDTHxHEIGHT, e.g. 768x512"),
        (["--size", "4096x512"], "image size 4096 is over Stable Diffusion 1.5's largest side"),
        (["--aspect", "tall"], "aspect 'tall' does not parse"),
        (["--aspect", "9:1"], "aspect '9:1' is past 4:1"),
        (["--sampler", "magic"], "unknown sampler 'magic': use one of euler, euler_cfg_pp, "),
        (["--scheduler", "weekly"], "unknown scheduler 'weekly': use one of simple, "),
        (["--steps", "0"], "steps: Input should be greater than or equal to 1"),
        (["--cfg", "31"], "cfg: Input should be less than or equal to 30"),
        (["--cfg", "nan"], "cfg: Input should be a finite number"),
        (["--negative", "x" * 1001], "negative_prompt: String should have at most 1000 characters"),
        (["--denoise", "0"], "denoise: Input should be greater than 0"),
        (["--character-weight", "nan"], "character_weight: must be a number from 0 to 1, got nan"),
        (["--character-weight", "1.5"], "character_weight: must be a number from 0 to 1, got 1.5"),
        (["--character-weight", "-1"], "character_weight: must be a number from 0 to 1, got -1"),
        (["--character-weight", "0.3"], "character weight does not apply: yuki is generated with"),
    ],
)
def test_bad_controls_exit_2_before_anything_is_sent(
    cli: CliRunner, yuki: str, server: FakeComfyUI, args: list[str], needle: str
) -> None:
    for command in ("generate", "workflow"):
        result = cli(command, yuki, "red dress", "--seed", "1", *args)
        assert result.code == 2, (command, result.err)
        assert result.err.startswith("error: ") and needle in result.err
    assert server.prompts_received == [] and server.inputs == {}


def test_generate_with_controls(cli: CliRunner, yuki: str, server: FakeComfyUI) -> None:
    result = cli(
        "generate",
        yuki,
        "red dress",
        "--seed",
        "4",
        "--size",
        "768x512",
        "--steps",
        "8",
        "--cfg",
        "5",
        "--sampler",
        "euler",
        "--scheduler",
        "normal",
        "--negative",
        "hat",
        "--json",
    )
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["size"] == [768, 512]
    params = report["params"]
    assert (params["steps"], params["cfg"], params["sampler"], params["scheduler"]) == (
        8,
        5.0,
        "euler",
        "normal",
    )
    assert params["negative_prompt"].endswith(", hat")
    sent = server.prompts_received[-1]["prompt"]
    latent = next(n["inputs"] for n in sent.values() if n["class_type"] in ("ImageScale",))
    assert (latent["width"], latent["height"]) == (768, 512)


def test_a_pose_bomb_or_a_truncated_pose_exits_2_naming_it(
    cli: CliRunner, yuki: str, server: FakeComfyUI, tmp_path: Path
) -> None:
    """Issue 15, finding 6: the CLI reported a decompression-bomb pose as an internal error
    (exit 1); a pose gets the same full check as a reference, before anything is sent."""
    from tests.conftest import decompression_bomb
    from tests.faces.conftest import DATA

    bomb = decompression_bomb(tmp_path / "bomb.png")
    result = cli("generate", yuki, "waving", "--variation", "pose", "--pose", str(bomb))
    assert result.code == 2, result.err
    assert "bomb.png has too many pixels" in result.err and "internal error" not in result.err
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((DATA / "obama_2009.jpg").read_bytes()[:5000])
    result = cli("generate", yuki, "waving", "--variation", "pose", "--pose", str(cut))
    assert result.code == 2 and "cut.jpg is corrupt or truncated" in result.err
    assert server.prompts_received == []
