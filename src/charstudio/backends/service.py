"""The generation service: (character, prompt, variation, strengths, seed, count) in, stored
images out, on whichever backend the user names.

:meth:`GenerationService.generate` is one recipe:

1. check the command's values (seed range, count, pose image, strengths) at the door;
2. read the character's profile: method, parameters, LoRA, reference image;
3. build the backend-neutral :class:`GenerationRequest` and validate its graph locally;
4. record the job, run the backend;
5. store each image under ``outputs/<name>/<job>/`` with its graph and parameters;
6. record a ``generations`` row per image and close the job.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from charstudio.backends.base import Backend, SupportsCheck
from charstudio.backends.outputs import generation_parameters, store_image
from charstudio.backends.records import finish_job, record_generations, start_job
from charstudio.backends.service_types import (
    GeneratedImage,
    GenerateSpec,
    GenerationDefaults,
    GenerationResult,
    WorkflowPlan,
)
from charstudio.backends.types import (
    MAX_COUNT,
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressSink,
    ServerNames,
)
from charstudio.errors import (
    GenerationCancelled,
    InvalidParameter,
    NotFound,
    UnsupportedImage,
)
from charstudio.library import AssetStore, CharacterConsistencyProfile, Database, Library
from charstudio.library.profile import GenerationParams
from charstudio.workflows import (
    SEED_MAX,
    Catalog,
    build_workflow,
    random_seed,
    write_templates,
)

__all__ = ["GenerationService"]


class GenerationService:
    """Generate images of a character on a backend.

    Args:
        library: The character library (profiles).
        store: The data root (``outputs/``).
        db: The database (jobs and generations).
        defaults: Base model and family from the settings.
        backends: Backend factories by ``--backend`` name.
    """

    def __init__(
        self,
        *,
        library: Library,
        store: AssetStore,
        db: Database,
        defaults: GenerationDefaults,
        backends: Mapping[str, Callable[[], Backend]],
    ) -> None:
        self.library = library
        self.store = store
        self.db = db
        self.defaults = defaults
        self.backends = dict(backends)

    def plan(
        self, spec: GenerateSpec, *, job_id: str | None = None
    ) -> tuple[GenerationRequest, CharacterConsistencyProfile]:
        """Check ``spec`` and turn it into a request, without running anything.

        Raises:
            InvalidParameter: a value out of range or not applicable (message names it).
            NotFound: no such character, or a file it names is gone.
            UnsupportedImage: the pose image is not an image.
        """
        # 1. The command's own values.
        seeds, drawn = _seeds(spec.seed, spec.count)
        if spec.backend not in self.backends:
            raise InvalidParameter(
                f"unknown backend {spec.backend!r}: use one of {', '.join(sorted(self.backends))}"
            )
        if spec.pose is not None and spec.variation != "pose":
            raise InvalidParameter(
                f"--pose was given with variation {spec.variation or 'none'}: add --variation pose"
            )
        if spec.pose is not None:
            _check_image(spec.pose, "pose image")
        if self.defaults.checkpoint is None:
            raise InvalidParameter(
                "no base model is set: set CHARSTUDIO_COMFYUI_CHECKPOINT to a file in the "
                "servers' models/checkpoints (e.g. v1-5-pruned-emaonly.safetensors)"
            )
        # 2. The character's profile and the strengths it allows.
        profile = self.library.profile(spec.name)
        params = _override(profile, spec)
        reference = Path(profile.reference_image) if profile.reference_image else None
        if profile.method != "lora_only":
            if reference is None:
                raise InvalidParameter(
                    f"{profile.name} has no reference image for {profile.method}: import some "
                    f"with `charstudio character import {profile.name} PATH`"
                )
            _check_image(reference, "reference image")
        # 3. The request, and its graph validated against the built-in catalog.
        request = GenerationRequest(
            character=profile.name,
            job=job_id or _job_id(),
            trigger_word=profile.trigger_word,
            prompt=spec.prompt,
            variation=spec.variation,
            method=profile.method,
            params=params,
            seeds=seeds,
            seeds_drawn=drawn,
            checkpoint=self.defaults.checkpoint,
            family=self.defaults.family,
            lora_file=Path(profile.lora_path) if profile.lora_path else None,
            reference_file=reference if profile.method != "lora_only" else None,
            pose_file=spec.pose,
            controlnet=self.defaults.openpose_controlnet if spec.pose is not None else None,
            ipadapter_preset=self.defaults.ipadapter_preset,
        )
        build_workflow(request.workflow_request(0, ServerNames()))
        return request, profile

    def write_templates(self) -> list[Path]:
        """Write the base, outfit, background and pose templates to ``workflows/templates``.

        Raises:
            StorageError: the folder cannot be written.
        """
        return write_templates(self.store.templates_dir, family=self.defaults.family)

    def workflow(self, spec: GenerateSpec, *, check_backend: bool = False) -> WorkflowPlan:
        """Build and validate the first image's graph without sending it.

        Args:
            spec: As for :meth:`generate`.
            check_backend: Also ask the backend whether it could run it now (for ComfyUI:
                which server would take it, with every node and model file it needs).

        Raises:
            UsageError: bad input (see :meth:`plan`).
            BackendError: ``check_backend`` and the backend could not run it (the message
                names each server and why).
        """
        request, profile = self.plan(spec)
        catalog = Catalog.builtin()
        graph = build_workflow(request.workflow_request(0, ServerNames()), catalog=catalog)
        runs_on = None
        if check_backend:
            backend = self.backends[spec.backend]()
            if not isinstance(backend, SupportsCheck):
                raise InvalidParameter(
                    f"backend {spec.backend!r} cannot be checked without generating: "
                    "leave out --check"
                )
            runs_on = backend.check(request)
        return WorkflowPlan(
            character=profile.name,
            method=profile.method,
            method_reason=profile.method_reason,
            params=request.params,
            seed=str(request.seeds[0]),
            seeds_drawn=request.seeds_drawn,
            validated_against=catalog.source,
            runs_on=runs_on,
            graph=graph,
        )

    def generate(
        self,
        spec: GenerateSpec,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
        job_id: str | None = None,
    ) -> GenerationResult:
        """Generate ``spec.count`` images, store them and record them.

        Args:
            job_id: The queued job this runs under (charstudio.jobs owns that record); without
                one, the generation records a job of its own.

        Raises:
            UsageError: bad input (see :meth:`plan`).
            BackendError: the backend failed; the message names the server and the fix.
        """
        # 1-3. Check, profile, request.
        request, _ = self.plan(spec, job_id=job_id)
        backend = self.backends[spec.backend]()
        owns_job = job_id is None
        # 4. Record the job (unless the queue already has) and run it.
        summary = {"prompt": spec.prompt, "variation": spec.variation, "count": request.count}
        if owns_job:
            start_job(self.db, job_id=request.job, character=request.character, params=summary)
        try:
            made = backend.generate(request, progress=progress, cancel=cancel)
        except GenerationCancelled as exc:
            if owns_job:
                finish_job(self.db, job_id=request.job, state="cancelled", error=str(exc))
            raise
        except KeyboardInterrupt:
            # Ctrl-C: the backend has already taken its prompts off the servers' queues.
            if owns_job:
                finish_job(self.db, job_id=request.job, state="cancelled", error="interrupted")
            raise
        except Exception as exc:
            if owns_job:
                finish_job(self.db, job_id=request.job, state="failed", error=str(exc))
            raise
        # 5-6. Store every image with what made it, and record them.
        result = self._store(request, made, backend.name)
        if owns_job:
            finish_job(
                self.db,
                job_id=request.job,
                state="succeeded",
                result=result.model_dump(mode="json"),
            )
        return result

    def _store(
        self, request: GenerationRequest, made: list[BackendImage], backend: str
    ) -> GenerationResult:
        """Write the images under ``outputs/<name>/<job>/`` and add their library rows."""
        folder = self.store.outputs_dir(request.character) / request.job
        parameters = [generation_parameters(request, image, backend) for image in made]
        stored = [
            store_image(folder, image=image, parameters=params)
            for image, params in zip(made, parameters, strict=True)
        ]
        ids = record_generations(
            self.db,
            character=request.character,
            job_id=request.job,
            backend=backend,
            images=stored,
        )
        images = [
            GeneratedImage(
                path=str(item.path),
                seed=str(image.seed),
                index=image.index,
                sha256=item.sha256,
                width=item.width,
                height=item.height,
                server=image.server,
                prompt_id=image.prompt_id,
                generation_id=row,
            )
            for image, item, row in zip(made, stored, ids, strict=True)
        ]
        return GenerationResult(
            character=request.character,
            job=request.job,
            backend=backend,
            method=request.method,
            params=request.params,
            seeds_drawn=request.seeds_drawn,
            output_dir=str(folder),
            images=images,
        )


def _seeds(seed: int | None, count: int) -> tuple[tuple[int, ...], bool]:
    if not 1 <= count <= MAX_COUNT:
        raise InvalidParameter(f"--count {count} is out of range: make 1 to {MAX_COUNT} images")
    if seed is None:
        return tuple(random_seed() for _ in range(count)), True
    if seed < 0:
        raise InvalidParameter(
            f"seed {seed} is out of range: seeds are 0 to {SEED_MAX} (2^64-1), and no value "
            "means 'random'; leave --seed out for a random seed (it is recorded with the image)"
        )
    if seed + count - 1 > SEED_MAX:
        raise InvalidParameter(
            f"seed {seed} is out of range for {count} image(s): seeds are 0 to {SEED_MAX} "
            f"(2^64-1) and each image takes the next one; use a seed up to {SEED_MAX - count + 1}"
        )
    return tuple(seed + i for i in range(count)), False


def _override(profile: CharacterConsistencyProfile, spec: GenerateSpec) -> GenerationParams:
    changes: dict[str, float] = {}
    for key, value, used in (
        ("lora_strength", spec.lora_strength, profile.params.lora_strength is not None),
        (
            "ipadapter_strength",
            spec.ipadapter_strength,
            profile.params.ipadapter_strength is not None,
        ),
    ):
        if value is None:
            continue
        if not used:
            raise InvalidParameter(
                f"--{key.replace('_', '-')} does not apply: {profile.name} is generated with "
                f"{profile.method} ({profile.method_reason}), which does not use it"
            )
        changes[key] = value
    return profile.params.model_copy(update=changes)


def _check_image(path: Path, what: str) -> None:
    if not path.is_file():
        raise NotFound(f"the {what} {path} does not exist: give an existing image file")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise UnsupportedImage(
            f"the {what} {path} is not a readable image: use a PNG or JPEG file"
        ) from exc


def _job_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
