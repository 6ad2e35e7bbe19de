"""``charstudio demo``: a fresh library, a character from sample photos, its profile.

Steps (each a service call, as a user would make it):

1. Create the data root and database (``charstudio init``).
2. Add the sample character from the bundled photos, once more to show duplicate detection
   (``charstudio character add`` / ``import``).
3. Extract the face identity and choose the IP-Adapter reference (``charstudio faces extract``).
4. Prepare the training set: face-centred crops, captions, contact sheet
   (``charstudio dataset prepare``).
5. Score the samples and a photo of someone else against the identity
   (``charstudio faces score``), with a contact sheet.
6. Compute the consistency profile: method and parameters (``charstudio character show``).
7. Build and validate the ComfyUI graph a generation would queue, and save it
   (``charstudio workflow``): load it into ComfyUI to see it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from charstudio.backends import GenerateRequest, WorkflowPlan
from charstudio.dataset import DatasetConfig, PrepareResult
from charstudio.faces import ExtractReport, ScoreReport
from charstudio.library import CharacterConsistencyProfile, ImportResult
from charstudio.services import InitResult, Services
from charstudio.workflows import write_json_atomic

__all__ = [
    "DEMO_CHARACTER",
    "DEMO_CHECKPOINT",
    "DemoReport",
    "DemoStep",
    "run_demo",
    "sample_images",
]

DEMO_CHARACTER = "demo_subject"
# The graph names a base model; the demo uses SD1.5's usual file name unless
# CHARSTUDIO_COMFYUI_CHECKPOINT names yours.
DEMO_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"


class DemoStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    title: str
    command: str
    summary: str


class DemoReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    init: InitResult
    added: ImportResult
    reimported: ImportResult
    identity: ExtractReport
    training_set: PrepareResult
    scores: ScoreReport
    profile: CharacterConsistencyProfile
    workflow: WorkflowPlan
    workflow_file: str
    steps: list[DemoStep]


def sample_images(folder: str = "samples") -> list[Path]:
    """The bundled photos (US federal government works, public domain; see samples/README)."""
    root = resources.files("charstudio.demo").joinpath(*folder.split("/"))
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".jpg"))


def run_demo(services: Services, *, on_step: Callable[[DemoStep], None]) -> DemoReport:
    """Run the demo on ``services`` (a fresh or earlier demo data root)."""
    images = sample_images()
    steps = _Steps(on_step)
    # 1. Create the data root and database.
    init = services.init()
    steps.done(
        "library", "charstudio init", f"data root {init.home}, schema {init.schema_revision}"
    )
    # 2. Add the character (replacing an earlier demo run's), then import the photos again.
    added = _add_character(services, images)
    reimported = services.library.import_images(DEMO_CHARACTER, images[:1])
    steps.done(
        "references",
        f"charstudio character add {DEMO_CHARACTER} --images ...",
        f"{len(added.added)} photos stored by content hash; importing one again was reported "
        f"as {len(reimported.duplicates)} duplicate",
    )
    # 3. Face identity and the IP-Adapter reference.
    identity = _extract_identity(services, steps)
    # 4. The training set.
    training_set = _prepare_training_set(services, steps)
    # 5. Identity scores: the character's photos pass, someone else's fails.
    scores = _score(services, images, steps)
    # 6. The consistency profile.
    profile = services.library.profile(DEMO_CHARACTER)
    steps.done(
        "profile",
        f"charstudio character show {DEMO_CHARACTER}",
        f"method {profile.method} ({profile.method_reason})",
    )
    # 7. The graph a generation would send to ComfyUI, validated but not sent.
    workflow_file = services.store.generated_workflows_dir.parent / "demo_workflow.json"
    workflow = _save_workflow(services, workflow_file, steps)
    return DemoReport(
        init=init,
        added=added,
        reimported=reimported,
        identity=identity,
        training_set=training_set,
        scores=scores,
        profile=profile,
        workflow=workflow,
        workflow_file=str(workflow_file),
        steps=steps.steps,
    )


class _Steps:
    """The steps done so far, each reported to ``on_step`` as it ends."""

    def __init__(self, on_step: Callable[[DemoStep], None]) -> None:
        self.steps: list[DemoStep] = []
        self._on_step = on_step

    def done(self, title: str, command: str, summary: str) -> None:
        step = DemoStep(number=len(self.steps) + 1, title=title, command=command, summary=summary)
        self.steps.append(step)
        self._on_step(step)


def _add_character(services: Services, images: list[Path]) -> ImportResult:
    library = services.library
    if DEMO_CHARACTER in {c.name for c in library.list_characters()}:
        library.remove(DEMO_CHARACTER, purge=True)
    return library.create(DEMO_CHARACTER, images, description="charstudio demo subject")


def _extract_identity(services: Services, steps: _Steps) -> ExtractReport:
    identity = services.faces.extract(DEMO_CHARACTER)
    reference = identity.reference.original_name if identity.reference else "none"
    steps.done(
        "identity",
        f"charstudio faces extract {DEMO_CHARACTER}",
        f"{identity.backend} identity from {identity.inliers} photos; IP-Adapter reference "
        f"{reference}",
    )
    return identity


def _prepare_training_set(services: Services, steps: _Steps) -> PrepareResult:
    # The bundled photos are small: 512 px crops, upscaled at most 2x.
    training_set = services.datasets.prepare(
        DEMO_CHARACTER, DatasetConfig.parse(resolution=512, max_upscale=2.0)
    )
    steps.done(
        "training set",
        f"charstudio dataset prepare {DEMO_CHARACTER} --resolution 512 --max-upscale 2",
        f"{len(training_set.kept)} face-centred 512 px crops, captioned like "
        f'"{training_set.kept[0].caption}"; contact sheet {training_set.contact_sheet}',
    )
    return training_set


def _score(services: Services, images: list[Path], steps: _Steps) -> ScoreReport:
    scores = services.faces.score(DEMO_CHARACTER, [*images, *sample_images("samples/others")])
    steps.done(
        "scores",
        f"charstudio faces score {DEMO_CHARACTER} IMAGES...",
        f"face consistency {scores.face_consistency:.0%} ({scores.passed}/{scores.total}; the "
        f"photo of someone else fails); contact sheet {scores.contact_sheet}",
    )
    return scores


def _save_workflow(services: Services, workflow_file: Path, steps: _Steps) -> WorkflowPlan:
    workflow = services.generation.workflow(
        DEMO_CHARACTER, GenerateRequest(prompt="a red raincoat", variation="outfit", seed=42)
    )
    write_json_atomic(workflow_file, workflow.graph)
    steps.done(
        "workflow",
        f'charstudio workflow {DEMO_CHARACTER} "a red raincoat" --variation outfit --seed 42',
        f"{len(workflow.graph)}-node {workflow.method} graph validated against "
        f"{workflow.validated_against}; saved to {workflow_file}",
    )
    return workflow
