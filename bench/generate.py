"""In-process generation speed: charstudio's diffusers backend against a plain diffusers call.

    .venv/bin/python bench/generate.py [--size tiny|small|sd15] [--resolution 256]
                                       [--steps 10] [--images 3] [--device cpu] [--json]

Both sides run the same random-initialised model (built from configs, saved as a diffusers
folder; speed does not depend on the weights' values), the same kohya LoRA (rank 16) at 0.7
and the same IP-Adapter PLUS (h94 layout) at 0.6 with its CLIP vision encoder, the same
prompt, DPM++ 2M Karras, cfg 7, one image per call:

- **charstudio**: ``DiffusersBackend.generate`` on a ``lora_ipadapter`` request, as
  ``charstudio generate --backend diffusers`` runs it (request checks, cached pipeline,
  adapters switched on, progress callback, PNG encoding);
- **diffusers**: ``StableDiffusionPipeline.from_pretrained`` + ``load_lora_weights`` +
  ``load_ip_adapter`` and one ``pipe(...)`` call, written out here.

The first call of each (which loads the model and adapters) is reported apart; the
seconds per image are the median of ``--images`` timed calls after it, the two sides
interleaved so that load from other processes falls on both alike. charstudio's
``lora_only`` on the same model gives IP-Adapter's share of the time.

``--size tiny`` is the test suite's model, ``small`` SD1.5's layout at a fifth of its width
(for CPUs), ``sd15`` full size with a full-size ViT-H/14 encoder and PLUS-face resampler
(for GPUs: 512 or 768, 25 steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.backends.tiny_adapters import (  # noqa: E402
    TINY_VISION,
    VIT_H_VISION,
    write_clip_vision,
    write_ipadapter,
    write_lora,
)
from tests.conftest import write_image  # noqa: E402
from tests.training.tiny_models import tiny_family  # noqa: E402

from charstudio.backends import GenerationRequest  # noqa: E402
from charstudio.backends.diffusers_backend import DiffusersBackend  # noqa: E402
from charstudio.backends.diffusers_options import DiffusersOptions  # noqa: E402
from charstudio.backends.diffusers_pipelines import PipelineCache  # noqa: E402
from charstudio.backends.diffusers_schedulers import make_scheduler  # noqa: E402
from charstudio.library.profile import METHOD_DEFAULTS  # noqa: E402
from charstudio.training.families import FAMILIES, Family, write_config_folder  # noqa: E402
from charstudio.workflows.families import CLIP_VISION_VIT_H  # noqa: E402

ADAPTER = "ip-adapter-plus-face_sd15.safetensors"


def _family(size: str) -> Family:
    if size == "tiny":
        return tiny_family("sd15")
    sd15 = FAMILIES["sd15"]
    if size == "sd15":
        return sd15
    unet = dict(sd15.components["unet"], block_out_channels=[64, 128, 256, 256])
    text = dict(sd15.components["text_encoder"], num_hidden_layers=4)
    vae = dict(sd15.components["vae"], block_out_channels=[32, 64, 128, 128])
    return dataclasses.replace(
        sd15, components=dict(sd15.components, unet=unet, vae=vae, text_encoder=text)
    )


def build(size: str, root: Path) -> tuple[Path, Path, Path]:
    """A random model folder, a ComfyUI models folder with the adapter files, a LoRA."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline
    from diffusers import UNet2DConditionModel as UNet
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    family = _family(size)
    configs = write_config_folder(family, root / "configs")
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        unet=UNet.from_config(family.components["unet"]),
        vae=AutoencoderKL.from_config(family.components["vae"]),
        text_encoder=CLIPTextModel(CLIPTextConfig(**family.components["text_encoder"])),
        tokenizer=CLIPTokenizer.from_pretrained(configs / "tokenizer"),
        scheduler=PNDMScheduler.from_config(family.components["scheduler"]),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "base")
    models = root / "models"
    full = size == "sd15"
    shape = {"clip_hidden": 1280, "hidden": 768, "queries": 16} if full else {}
    if size == "small":
        shape = {"clip_hidden": 32, "hidden": 128, "queries": 16}
    write_ipadapter(pipe.unet, models / "ipadapter" / ADAPTER, **shape)
    write_clip_vision(
        models / "clip_vision" / CLIP_VISION_VIT_H, VIT_H_VISION if full else TINY_VISION
    )
    lora = write_lora(pipe, "sd15", root / "yuki_v1.safetensors")
    return root / "base", models, lora


def request(
    args: argparse.Namespace, lora: Path, reference: Path, seed: int, method: str
) -> GenerationRequest:
    params = METHOD_DEFAULTS[method].model_copy(update={"steps": args.steps, "cfg": 7.0})  # type: ignore[index]
    return GenerationRequest(
        character="yuki",
        job=f"bench-{seed}",
        trigger_word="yukicharacter",
        prompt="red dress",
        variation="outfit",
        method=method,  # type: ignore[arg-type]
        params=params,
        seeds=(seed,),
        checkpoint="base",
        width=args.resolution,
        height=args.resolution,
        lora_file=lora,
        reference_file=reference if method == "lora_ipadapter" else None,
    )


class Plain:
    """The same generation written directly against diffusers."""

    def __init__(self, base: Path, models: Path, lora: Path, device: str) -> None:
        from diffusers import StableDiffusionPipeline
        from transformers import CLIPImageProcessorPil

        started = time.perf_counter()
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        pipe: Any = StableDiffusionPipeline.from_pretrained(str(base), local_files_only=True)
        pipe.image_encoder = _encoder(models)
        size = pipe.image_encoder.config.image_size
        pipe.feature_extractor = CLIPImageProcessorPil(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
        pipe.load_ip_adapter(
            str(models / "ipadapter"), subfolder="", weight_name=ADAPTER, image_encoder_folder=None
        )
        pipe.load_lora_weights(str(lora), adapter_name="yuki")
        pipe.set_adapters(["yuki"], adapter_weights=[0.7])
        pipe.set_ip_adapter_scale(0.6)
        pipe.scheduler = make_scheduler(
            pipe.scheduler.config, sampler="dpmpp_2m", scheduler="karras"
        )
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device, dtype)
        self.load_seconds = time.perf_counter() - started

    def __call__(self, req: GenerationRequest, reference: Any) -> None:
        workflow = req.workflow_request(0, _names())
        self.pipe(
            prompt=workflow.positive_prompt,
            negative_prompt=workflow.negative_prompt,
            ip_adapter_image=reference,
            num_inference_steps=req.params.steps,
            guidance_scale=req.params.cfg,
            width=req.width,
            height=req.height,
            generator=torch.Generator("cpu").manual_seed(req.seeds[0]),
        )


def _encoder(models: Path) -> Any:
    from charstudio.backends.ipadapter_files import load_clip_vision

    return load_clip_vision(models / "clip_vision" / CLIP_VISION_VIT_H).encoder


def _names() -> Any:
    from charstudio.backends import ServerNames

    return ServerNames()


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall seconds, and this process's CPU seconds (on a CPU shared with other work the
    steadier figure: time spent waiting for a core is not counted)."""

    wall: float
    cpu: float


def _timed(call: Any) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    call()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return Timing(time.perf_counter() - started, time.process_time() - cpu)


def one_image(backend: DiffusersBackend, req: GenerationRequest) -> None:
    """charstudio's side: one generation, which must return its one image (a call that
    returned nothing would time nothing)."""
    images = backend.generate(req)
    if len(images) != 1 or not images[0].png:
        raise SystemExit(f"charstudio returned {len(images)} images for {req.method}, not 1")


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from PIL import Image

    base, models, lora = build(args.size, root)
    reference_path = write_image(root / "reference.png", size=(256, 256))
    reference = Image.open(reference_path).convert("RGB")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    options = DiffusersOptions(base_model=base, models_dir=models, device=device)
    ours = DiffusersBackend(options, cache=PipelineCache())
    first_ours = _timed(
        lambda: one_image(ours, request(args, lora, reference_path, 1, "lora_ipadapter"))
    )
    model, _ = ours.cache.get(base.resolve(), family="sd15", config_dir=None, device=device)
    plain_holder: list[Plain] = []
    first_plain = _timed(lambda: plain_holder.append(Plain(base, models, lora, device)))
    plain = plain_holder[0]
    first_plain_call = _timed(
        lambda: plain(request(args, lora, reference_path, 1, "lora_ipadapter"), reference)
    )
    times: dict[str, list[Timing]] = {"charstudio": [], "diffusers": [], "charstudio lora_only": []}
    for seed in range(2, 2 + args.images):  # the two sides interleaved
        req = request(args, lora, reference_path, seed, "lora_ipadapter")
        times["charstudio"].append(_timed(lambda r=req: one_image(ours, r)))
        times["diffusers"].append(_timed(lambda r=req: plain(r, reference)))
    # Apart: switching methods detaches the IP-Adapter, which interleaving would time too.
    for seed in range(2, 2 + args.images + 1):
        only = request(args, lora, reference_path, seed, "lora_only")
        times["charstudio lora_only"].append(_timed(lambda r=only: one_image(ours, r)))
    times["charstudio lora_only"].pop(0)  # the call that detached the adapter
    wall = {k: statistics.median(t.wall for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t.cpu for t in v) for k, v in times.items()}
    return {
        "size": args.size,
        "device": device,
        "resolution": args.resolution,
        "steps": args.steps,
        "images": args.images,
        "first_call_s": {
            "charstudio (load + image)": round(first_ours.wall, 3),
            "charstudio load only": round(model.load_seconds, 3),
            "diffusers load": round(first_plain.wall, 3),
            "diffusers first image": round(first_plain_call.wall, 3),
        },
        "seconds_per_image": {k: round(v, 3) for k, v in wall.items()},
        "cpu_seconds_per_image": {k: round(v, 3) for k, v in cpu.items()},
        "all_seconds": {k: [round(t.wall, 3) for t in v] for k, v in times.items()},
        "charstudio_vs_diffusers": round(wall["charstudio"] / wall["diffusers"] - 1, 4),
        "charstudio_vs_diffusers_cpu": round(cpu["charstudio"] / cpu["diffusers"] - 1, 4),
        "ipadapter_share": round(wall["charstudio"] / wall["charstudio lora_only"] - 1, 4),
        "ipadapter_share_cpu": round(cpu["charstudio"] / cpu["charstudio lora_only"] - 1, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "small", "sd15"], default="small")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.images < 1 or args.steps < 1:
        parser.error("needs --images >= 1 and --steps >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="charstudio-bench-generate-") as tmp:
        result = run(args, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.size} SD1.5 on {result['device']}, {args.resolution}px, {args.steps} steps, "
        f"LoRA + IP-Adapter PLUS, median of {args.images}"
    )
    for name, value in result["first_call_s"].items():
        print(f"  first call  {name:<28} {value:8.3f} s")
    for name, value in result["seconds_per_image"].items():
        cpu = result["cpu_seconds_per_image"][name]
        print(f"  per image   {name:<28} {value:8.3f} s  ({cpu:.3f} s CPU)")
    print(
        f"  charstudio vs diffusers: {result['charstudio_vs_diffusers']:+.1%} wall, "
        f"{result['charstudio_vs_diffusers_cpu']:+.1%} CPU"
    )
    print(
        f"  IP-Adapter's share (lora_ipadapter vs lora_only): {result['ipadapter_share']:+.1%} "
        f"wall, {result['ipadapter_share_cpu']:+.1%} CPU"
    )


if __name__ == "__main__":
    main()
