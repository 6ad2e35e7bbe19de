"""ComfyUI sampler and scheduler names as diffusers schedulers.

A request names its sampler the way ComfyUI's KSampler does (``sampler_name`` =
``dpmpp_2m``, ``scheduler`` = ``karras``), so the same request runs on either backend.
The table maps each name to the diffusers scheduler class that implements the same
solver (diffusers' "Schedulers" docs list the A1111/k-diffusion equivalents); a name
without an equivalent is refused at the door rather than swapped for another silently.
"""

from __future__ import annotations

from typing import Any

from charstudio.errors import InvalidParameter

__all__ = ["SAMPLERS", "SCHEDULES", "check_sampler", "make_scheduler"]

# KSampler sampler_name -> (diffusers class, its keyword arguments).
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "ddim": ("DDIMScheduler", {}),
    "uni_pc": ("UniPCMultistepScheduler", {}),
}
# KSampler scheduler -> keyword arguments; karras needs a class that supports its sigmas.
SCHEDULES: dict[str, dict[str, Any]] = {
    "normal": {"use_karras_sigmas": False},
    "karras": {"use_karras_sigmas": True},
}
_KARRAS = {"EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}


def check_sampler(sampler: str, scheduler: str) -> None:
    """Refuse a sampler/scheduler pair the in-process backend has no equivalent for.

    Raises:
        InvalidParameter: the message names the value and the choices.
    """
    if sampler not in SAMPLERS:
        raise InvalidParameter(
            f"sampler {sampler!r} has no diffusers equivalent in charstudio: use one of "
            f"{', '.join(SAMPLERS)}, or generate with --backend comfyui"
        )
    if scheduler not in SCHEDULES:
        raise InvalidParameter(
            f"scheduler {scheduler!r} is not supported by --backend diffusers: use "
            f"{' or '.join(SCHEDULES)}"
        )
    if scheduler == "karras" and SAMPLERS[sampler][0] not in _KARRAS:
        raise InvalidParameter(
            f"sampler {sampler!r} has no karras schedule in diffusers: use scheduler 'normal'"
        )


def make_scheduler(config: Any, *, sampler: str, scheduler: str) -> Any:
    """A fresh scheduler built from the base model's scheduler ``config``."""
    import diffusers

    check_sampler(sampler, scheduler)
    class_name, options = SAMPLERS[sampler]
    cls: Any = getattr(diffusers, class_name)
    schedule = SCHEDULES[scheduler] if class_name in _KARRAS else {}
    return cls.from_config(config, **options, **schedule)
