"""The in-process backend: the same :class:`GenerationRequest` as ComfyUI, run with diffusers.

:meth:`DiffusersBackend.generate` is one recipe:

1. find and check every file the request needs (:func:`resolve_inputs`): nothing is loaded
   until the base model, LoRA, IP-Adapter, CLIP vision and ControlNet files are all there
   and of the base model's family (names, metadata and tensor shapes, read from headers);
2. load the base model through the trainer's loader, or reuse the cached one
   (:class:`PipelineCache`);
3. switch the LoRA and IP-Adapter on at the request's strengths (swapped, not reloaded),
   the IP-Adapter's scale shaped by the character weight (:func:`ipadapter_scale`);
4. pick the pipeline: text-to-image, img2img from the reference (the fallback method, at
   ``params.denoise``), or OpenPose ControlNet (pose variation with a pose image);
5. encode the reference for IP-Adapter once, for all the request's seeds;
6. make one image per seed, reporting each step and stopping between steps on cancel.

Prompts are the workflows package's: :attr:`WorkflowRequest.positive_prompt` (trigger
word, then the variation template of docs/ARCHITECTURE.md) and its negative prompt. Each
image carries the ComfyUI graph that makes the same request on a server, so the stored PNG
is the same kind of file whichever backend made it.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from typing import Any

import torch
from PIL import Image, ImageOps

from charstudio.backends.diffusers_inputs import DiffusersInputs, resolve_inputs
from charstudio.backends.diffusers_options import DiffusersOptions
from charstudio.backends.diffusers_pipelines import (
    LoadedModel,
    PipelineCache,
    best_device,
    ipadapter_scale,
)
from charstudio.backends.diffusers_schedulers import make_scheduler
from charstudio.backends.types import (
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressEvent,
    ProgressSink,
    ServerNames,
)
from charstudio.errors import CharstudioError, GenerationCancelled, GenerationFailed
from charstudio.training import BaseModelInvalid
from charstudio.workflows import WorkflowRequest, build_workflow, editor_workflow

__all__ = ["SERVER", "DiffusersBackend", "DiffusersOptions"]

SERVER = "embedded"


class _Cancelled(Exception):
    """Raised from the step callback to leave the denoising loop."""


class DiffusersBackend:
    """Generate in this process with diffusers (see the module docstring for the recipe).

    Args:
        options: Model locations and device.
        cache: Pipelines kept between requests; share one across backends of a process.
    """

    name = "diffusers"

    def __init__(self, options: DiffusersOptions, *, cache: PipelineCache | None = None) -> None:
        self.options = options
        self.cache = cache or PipelineCache()

    def check(self, request: GenerationRequest) -> str:
        """Check every file ``request`` needs, without loading or generating.

        Returns:
            ``"embedded"``: where it would run.

        Raises:
            ModelFileMissing, ModelMismatch, InvalidParameter: as :meth:`generate` would.
        """
        resolve_inputs(request, base=self.options.base_model, models_dir=self.options.models_dir)
        return SERVER

    def generate(
        self,
        request: GenerationRequest,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BackendImage]:
        """Make one image per seed of ``request`` (see :class:`Backend`).

        Raises:
            ModelFileMissing: a file is missing; the message names it and the folder.
            ModelMismatch: an IP-Adapter or LoRA of another family than the base model.
            BaseModelInvalid: the base model is corrupt or of another family.
            GenerationCancelled: ``cancel`` was cancelled.
            GenerationFailed: diffusers failed while generating.
        """
        # 1. Every file, checked before anything is loaded.
        inputs = resolve_inputs(
            request, base=self.options.base_model, models_dir=self.options.models_dir
        )
        _raise_if_cancelled(cancel, request)
        # 2. The base model, cached between requests.
        device = best_device(self.options.device)
        try:
            model, loaded = self.cache.get(
                inputs.base,
                family=request.family,
                config_dir=self.options.config_dir,
                device=device,
            )
        except BaseModelInvalid as exc:
            # The trainer's loader names its own config keys; say which settings they are here.
            raise BaseModelInvalid(
                f"{exc} (for --backend diffusers, model.base_checkpoint is "
                "CHARSTUDIO_DIFFUSERS_BASE_MODEL and model.family is CHARSTUDIO_COMFYUI_FAMILY)"
            ) from exc
        _report(progress, request, "started", "loaded base model" if loaded else "model cached")
        with model.lock:
            # 3. LoRA and IP-Adapter at the request's strengths (and character weight).
            model.use_lora(inputs.lora, request.params.lora_strength or 0.0)
            model.use_ipadapter(inputs.adapter, ipadapter_scale(request.params))
            # 4. The pipeline for the method and variation.
            pipe = _pipeline(model, inputs)
            pipe.scheduler = make_scheduler(
                model.scheduler_config,
                sampler=request.sampler,
                scheduler=request.scheduler,
            )
            # 5. The reference through the image encoder, once for all seeds.
            embeds = _encode_reference(pipe, model, inputs, request)
            # 6. One image per seed.
            extra = {"device": device, "load_seconds": round(model.load_seconds, 3)}
            return [
                _make_image(pipe, request, inputs, embeds, index, progress, cancel, extra)
                for index in range(request.count)
            ]


def _uses_img2img(inputs: DiffusersInputs) -> bool:
    """The img2img fallback: neither LoRA nor IP-Adapter, only the reference."""
    return (
        inputs.controlnet is None
        and inputs.adapter is None
        and inputs.lora is None
        and inputs.reference is not None
    )


def _pipeline(model: LoadedModel, inputs: DiffusersInputs) -> Any:
    if inputs.controlnet is not None:
        return model.controlnet(inputs.controlnet)
    if _uses_img2img(inputs):
        return model.img2img()
    return model.pipeline


def _encode_reference(
    pipe: Any, model: LoadedModel, inputs: DiffusersInputs, request: GenerationRequest
) -> list[Any] | None:
    """IP-Adapter image embeddings of the reference, computed once per request.

    Passing the image itself would run the CLIP vision encoder again for every seed (a
    ViT-H/14 pass costs more than a denoising step); the embeddings are what the pipeline
    makes of it, so the images are the same.
    """
    if inputs.adapter is None or inputs.reference is None:
        return None
    guidance = request.params.cfg > 1.0  # the pipelines' do_classifier_free_guidance
    with torch.no_grad():
        embeds: list[Any] = pipe.prepare_ip_adapter_image_embeds(
            inputs.reference, None, model.device, 1, guidance
        )
    return embeds


def _call_arguments(
    request: GenerationRequest,
    inputs: DiffusersInputs,
    workflow: WorkflowRequest,
    embeds: list[Any] | None,
) -> dict[str, Any]:
    """The pipeline's keyword arguments for one image."""
    width, height = workflow.size
    arguments: dict[str, Any] = {
        "prompt": workflow.positive_prompt,
        "negative_prompt": workflow.negative_prompt,
        "num_inference_steps": request.params.steps,
        "guidance_scale": request.params.cfg,
        "generator": torch.Generator("cpu").manual_seed(workflow.seed),
        "output_type": "pil",
    }
    if embeds is not None:
        arguments["ip_adapter_image_embeds"] = embeds
    if inputs.controlnet is not None and inputs.pose is not None:
        # The image is used as an OpenPose skeleton; ComfyUI's graph may draw one first.
        arguments["image"] = ImageOps.fit(inputs.pose, (width, height), Image.Resampling.LANCZOS)
    if _uses_img2img(inputs) and inputs.reference is not None:
        # img2img: the reference cropped to the target aspect (never squashed), as the
        # ComfyUI graph's ImageScale(crop="center") does, then denoised partly.
        arguments["image"] = ImageOps.fit(
            inputs.reference, (width, height), Image.Resampling.LANCZOS
        )
        arguments["strength"] = request.params.denoise
        # KSampler runs `steps` steps over the last `denoise` of a longer schedule
        # (comfy/samplers.py: int(steps / denoise) in all); diffusers runs
        # int(num_inference_steps * strength), so ask for the longer schedule.
        arguments["num_inference_steps"] = math.ceil(
            request.params.steps / request.params.denoise - 1e-6
        )
    else:
        arguments |= {"width": width, "height": height}
    return arguments


def _make_image(
    pipe: Any,
    request: GenerationRequest,
    inputs: DiffusersInputs,
    embeds: list[Any] | None,
    index: int,
    progress: ProgressSink | None,
    cancel: CancelToken | None,
    extra: dict[str, Any],
) -> BackendImage:
    """Run the pipeline for seed ``index``; PNG bytes with the equivalent ComfyUI graph."""
    workflow = request.workflow_request(index, ServerNames())
    graph = build_workflow(workflow)

    def on_step(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> Any:
        if cancel is not None and cancel.cancelled:
            raise _Cancelled
        if progress is not None:
            total = int(getattr(pipeline, "num_timesteps", 0) or request.params.steps)
            progress(
                ProgressEvent(
                    "step",
                    index,
                    request.count,
                    value=step + 1,
                    max=total,
                    server=SERVER,
                    message=f"step {step + 1}/{total}",
                )
            )
        return tensors

    started = time.perf_counter()
    try:
        arguments = _call_arguments(request, inputs, workflow, embeds)
        with warnings.catch_warnings():
            # diffusers 0.42's schedulers call np.array() on a torch tensor, which numpy 2
            # reports as a DeprecationWarning about __array__'s copy keyword; harmless.
            warnings.filterwarnings(
                "ignore", message="__array__ implementation", category=DeprecationWarning
            )
            result = pipe(**arguments, callback_on_step_end=on_step)
    except _Cancelled:
        raise _cancelled(request) from None
    except CharstudioError:
        raise
    except Exception as exc:
        raise GenerationFailed(
            f"diffusers failed on image {index + 1} of {request.count} for {request.character} "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    buffer = io.BytesIO()
    result.images[0].save(buffer, format="PNG")
    _report(progress, request, "finished", f"image {index + 1} of {request.count}", index)
    return BackendImage(
        index=index,
        seed=request.seeds[index],
        png=buffer.getvalue(),
        graph=graph,
        workflow=editor_workflow(graph),
        server=SERVER,
        extra={**extra, "seconds": round(time.perf_counter() - started, 3)},
    )


def _report(
    progress: ProgressSink | None,
    request: GenerationRequest,
    kind: Any,
    message: str,
    index: int = 0,
) -> None:
    if progress is not None:
        progress(ProgressEvent(kind, index, request.count, server=SERVER, message=message))


def _cancelled(request: GenerationRequest) -> GenerationCancelled:
    return GenerationCancelled(
        f"generation {request.job} for {request.character} was cancelled; images not yet "
        "finished were not kept"
    )


def _raise_if_cancelled(cancel: CancelToken | None, request: GenerationRequest) -> None:
    if cancel is not None and cancel.cancelled:
        raise _cancelled(request)
