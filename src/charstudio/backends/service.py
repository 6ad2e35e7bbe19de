"""The generation service: a character and a :class:`GenerateRequest` in, stored images
out, on whichever backend the request names.

:meth:`GenerationService.generate` is one recipe (:meth:`~GenerationService.plan` is its
first four steps, and ``workflow --print`` stops there):

1. check what the request alone decides: backend, base model, seeds, size;
2. read the character's profile and apply the request's own values (strengths, character
   weight, steps, cfg, sampler, scheduler, negative prompt, denoise);
3. choose the IP-Adapter preset (the full-image one when the character weight carries the
   outfit), the reference (the face crop for face presets) and the pose path (a skeleton
   goes straight to the ControlNet);
4. build the backend-neutral :class:`GenerationRequest` and validate its graph locally;
5. record the job (unless the queue did), run the backend;
6. store each image under ``outputs/<name>/<job>/`` with its graph and parameters;
7. record a ``generations`` row per image and close the job.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

from charstudio.backends.base import Backend, SupportsCheck, SupportsUpload
from charstudio.backends.comfyui_errors import preprocessor_warning
from charstudio.backends.diffusers_checks import check_request as check_diffusers_request
from charstudio.backends.outputs import generation_parameters, store_image
from charstudio.backends.planning import (
    choose_reference,
    drawn_character_preset,
    resolve_params,
    resolve_size,
    seeds_for,
)
from charstudio.backends.poses import FaceDetector, classify_pose
from charstudio.backends.records import finish_job, record_generations, start_job
from charstudio.backends.service_types import (
    GeneratedImage,
    GenerateRequest,
    GenerationDefaults,
    GenerationResult,
    WorkflowPlan,
)
from charstudio.backends.types import (
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressSink,
    ServerNames,
    upload_name,
)
from charstudio.errors import GenerationCancelled, InvalidParameter
from charstudio.library import AssetStore, CharacterConsistencyProfile, Database, Library
from charstudio.workflows import Catalog, build_workflow, preset_for, write_templates

__all__ = ["GenerationPlan", "GenerationService"]


@dataclass(frozen=True)
class GenerationPlan:
    """A checked request: what the backend gets, the profile it came from, and what the
    user should hear before it is queued (e.g. a pose preprocessor that needs weights)."""

    request: GenerationRequest
    profile: CharacterConsistencyProfile
    warnings: tuple[str, ...] = ()


def build_size(request: GenerationRequest) -> tuple[int, int]:
    """The image size a request makes (the family's default where it gives none)."""
    return request.workflow_request(0, ServerNames()).size


def _names_to_check(request: GenerationRequest) -> ServerNames:
    """Stand-in upload names for checking a graph: the names do not change the check, and
    the real ones (:func:`upload_name`) read each image through SHA-256 — on every
    submitted generation, for a graph that is thrown away."""
    return ServerNames(
        reference_image=_stand_in(request.reference_file),
        pose_image=_stand_in(request.pose_file),
    )


def _stand_in(path: Path | None) -> str | None:
    return None if path is None else f"charstudio_check{path.suffix.lower()}"


def upload_names(request: GenerationRequest) -> dict[str, str]:
    """Local image -> the name the upload gives it on a ComfyUI server."""
    files = (request.reference_file, request.pose_file)
    return {str(path): upload_name(path) for path in files if path is not None}


class GenerationService:
    """Generate images of a character on a backend.

    Args:
        library: The character library (profiles).
        store: The data root (``outputs/``).
        db: The database (jobs and generations).
        defaults: Base model and family from the settings.
        backends: Backend factories by ``--backend`` name.
        faces: The face detector that tells a pose photo with a person from other images
            (made only when a pose image is not a skeleton).
    """

    def __init__(
        self,
        *,
        library: Library,
        store: AssetStore,
        db: Database,
        defaults: GenerationDefaults,
        backends: Mapping[str, Callable[[], Backend]],
        faces: Callable[[], FaceDetector] | None = None,
    ) -> None:
        self.library = library
        self.store = store
        self.db = db
        self.defaults = defaults
        self.backends = dict(backends)
        self.faces = faces

    @cached_property
    def catalog(self) -> Catalog:
        """The node catalog requests are checked against before anything is queued."""
        return Catalog.builtin()

    def plan(
        self, name: str, request: GenerateRequest, *, job_id: str | None = None
    ) -> GenerationPlan:
        """Check ``request`` for ``name`` and turn it into a backend request; run nothing.

        Raises:
            InvalidParameter: a value out of range or not applicable (message names it).
            NotFound: no such character, or a file it names is gone.
            UnsupportedImage: the pose or reference image is not an image.
        """
        # 1. What the request alone decides.
        if request.backend not in self.backends:
            raise InvalidParameter(
                f"unknown backend {request.backend!r}: use one of "
                f"{', '.join(sorted(self.backends))}"
            )
        if self.defaults.checkpoint is None:
            raise InvalidParameter(
                "no base model is set: set CHARSTUDIO_COMFYUI_CHECKPOINT to a file in the "
                "servers' models/checkpoints (e.g. v1-5-pruned-emaonly.safetensors)"
            )
        seeds, drawn = seeds_for(request)
        family = self.defaults.family
        width, height = resolve_size(request, family)
        # 2. The character's profile, with the request's own values.
        profile = self.library.profile(
            name, method=request.method, lora_version=request.lora_version
        )
        params = resolve_params(profile, request, self.catalog)
        # The full-image preset when the character weight carries hair and outfit; a drawn
        # character's face preset becomes the full-image one too.
        preset = preset_for(params.character_weight, self.defaults.ipadapter_preset)
        preset, preset_note = drawn_character_preset(profile, preset)
        reference, reference_input = choose_reference(
            profile,
            preset=preset,
            face_crop=self.store.embeddings_dir / f"{profile.name}_reference_face.png",
        )
        # 3. The pose image: a skeleton goes straight to the ControlNet.
        warnings: list[str] = [preset_note] if preset_note else []
        pose_kind: Literal["skeleton", "photo"] = "photo"
        if request.pose is not None:
            pose_kind = self._pose_kind(request, warnings)
        # 4. The backend request, and its graph validated against the built-in catalog.
        built = GenerationRequest(
            character=profile.name,
            job=job_id or _job_id(),
            trigger_word=profile.trigger_word,
            prompt=request.prompt,
            variation=request.variation,
            method=profile.method,
            params=params,
            seeds=seeds,
            seeds_drawn=drawn,
            checkpoint=self.defaults.checkpoint,
            family=family,
            width=width,
            height=height,
            lora_file=Path(profile.lora_path) if profile.lora_path else None,
            lora_version=profile.lora_version if profile.method.startswith("lora") else None,
            reference_file=reference,
            reference_input=reference_input,
            pose_file=request.pose,
            pose_kind=pose_kind,
            controlnet=self.defaults.openpose_controlnet if request.pose is not None else None,
            ipadapter_preset=preset,
        )
        build_workflow(built.workflow_request(0, _names_to_check(built)), catalog=self.catalog)
        if request.backend == "diffusers":
            check_diffusers_request(built)
        return GenerationPlan(request=built, profile=profile, warnings=tuple(warnings))

    def _pose_kind(
        self, request: GenerateRequest, warnings: list[str]
    ) -> Literal["skeleton", "photo"]:
        """Skeleton or photo (see :mod:`charstudio.backends.poses` for the rule)."""
        assert request.pose is not None
        pose = classify_pose(request.pose, kind=request.pose_kind, faces=self.faces)
        if pose.kind == "photo" and request.backend != "diffusers":
            warnings.append(preprocessor_warning(None))
        return pose.kind

    def write_templates(self) -> list[Path]:
        """Write the base, outfit, background and pose templates to ``workflows/templates``.

        Raises:
            StorageError: the folder cannot be written.
        """
        return write_templates(self.store.templates_dir, family=self.defaults.family)

    def workflow(
        self,
        name: str,
        request: GenerateRequest,
        *,
        check_backend: bool = False,
        upload: bool = False,
    ) -> WorkflowPlan:
        """The first image's graph exactly as ``generate`` would send it; nothing is queued.

        Args:
            check_backend: Also ask the backend whether it could run it now (for ComfyUI:
                which server would take it, with every node and model file it needs).
            upload: Upload the images the graph loads to that server, so the printed
                graph runs there as it is (ComfyUI only).

        Raises:
            UsageError: bad input (see :meth:`plan`).
            BackendError: the backend could not run it, or the upload failed (the message
                names each server and why).
        """
        planned = self.plan(name, request)
        built = planned.request
        graph = build_workflow(built.workflow_request(0, ServerNames()), catalog=self.catalog)
        runs_on = uploaded_to = None
        if check_backend or upload:
            backend = self.backends[request.backend]()
            if not isinstance(backend, SupportsCheck):
                raise InvalidParameter(
                    f"backend {request.backend!r} has no server to check or upload to: "
                    "leave out --check and --upload"
                )
            if upload:
                if not isinstance(backend, SupportsUpload):
                    raise InvalidParameter(
                        f"backend {request.backend!r} loads images itself: leave out --upload"
                    )
                # The upload goes to the server the check would name (the same choice, with
                # every node and model file checked): one choice, not two.
                runs_on = uploaded_to = backend.upload(built)
            else:
                runs_on = backend.check(built)
        return WorkflowPlan(
            character=planned.profile.name,
            method=built.method,
            method_reason=planned.profile.method_reason,
            params=built.params,
            seed=built.seeds[0],
            seeds_drawn=built.seeds_drawn,
            size=build_size(built),
            reference=str(built.reference_file) if built.reference_file else None,
            reference_input=built.reference_input,
            pose_kind=built.pose_kind if built.pose_file else None,
            uploads=upload_names(built),
            validated_against=self.catalog.source,
            runs_on=runs_on,
            uploaded_to=uploaded_to,
            warnings=list(planned.warnings),
            graph=graph,
        )

    def generate(
        self,
        name: str,
        request: GenerateRequest,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
        job_id: str | None = None,
        planned: GenerationPlan | None = None,
    ) -> GenerationResult:
        """Generate ``request.count`` images of ``name``, store them and record them.

        Args:
            job_id: The queued job this runs under (charstudio.jobs owns that record); without
                one, the generation records a job of its own.
            planned: What :meth:`plan` made of this request already (the CLI plans first
                to say its warnings before the progress bar starts).

        Raises:
            UsageError: bad input (see :meth:`plan`).
            BackendError: the backend failed; the message names the server and the fix.
        """
        # 1-4. Check, profile, backend request.
        built = (planned or self.plan(name, request, job_id=job_id)).request
        backend = self.backends[request.backend]()
        owns_job = job_id is None
        # 5. Record the job (unless the queue already has) and run it.
        summary = {"prompt": request.prompt, "variation": request.variation, "count": built.count}
        if owns_job:
            start_job(self.db, job_id=built.job, character=built.character, params=summary)
        try:
            made = backend.generate(built, progress=progress, cancel=cancel)
        except GenerationCancelled as exc:
            if owns_job:
                finish_job(self.db, job_id=built.job, state="cancelled", error=str(exc))
            raise
        except KeyboardInterrupt:
            # Ctrl-C: the backend has already taken its prompts off the servers' queues.
            if owns_job:
                finish_job(self.db, job_id=built.job, state="cancelled", error="interrupted")
            raise
        except Exception as exc:
            if owns_job:
                finish_job(self.db, job_id=built.job, state="failed", error=str(exc))
            raise
        # 6-7. Store every image with what made it, and record them.
        result = self._store(built, made, backend.name)
        if owns_job:
            finish_job(
                self.db,
                job_id=built.job,
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
            home=self.store.home,
            character=request.character,
            job_id=request.job,
            backend=backend,
            images=stored,
        )
        images = [
            GeneratedImage(
                path=str(item.path),
                seed=image.seed,
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
            lora_version=request.lora_version,
            params=request.params,
            size=build_size(request),
            reference_input=request.reference_input,
            seeds_drawn=request.seeds_drawn,
            output_dir=str(folder),
            images=images,
        )


def _job_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
