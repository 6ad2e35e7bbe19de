"""``charstudio demo``: a fresh library, a character from sample photos, its profile.

Steps (each a service call, as a user would make it):

1. Create the data root and database (``charstudio init``).
2. Add the sample character from the bundled photos, once more to show duplicate detection
   (``charstudio character add`` / ``import``).
3. Compute the consistency profile: method and parameters (``charstudio character show``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from charstudio.library import CharacterConsistencyProfile, ImportResult
from charstudio.services import InitResult, Services

__all__ = ["DEMO_CHARACTER", "DemoReport", "DemoStep", "run_demo", "sample_images"]

DEMO_CHARACTER = "demo_subject"


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
    profile: CharacterConsistencyProfile
    steps: list[DemoStep]


def sample_images() -> list[Path]:
    """The bundled photos (US federal government works, public domain; see samples/README)."""
    folder = resources.files("charstudio.demo") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jpg"))


def run_demo(services: Services, *, on_step: Callable[[DemoStep], None]) -> DemoReport:
    """Run the demo on ``services`` (a fresh or earlier demo data root)."""
    images = sample_images()
    steps: list[DemoStep] = []

    def done(title: str, command: str, summary: str) -> None:
        step = DemoStep(number=len(steps) + 1, title=title, command=command, summary=summary)
        steps.append(step)
        on_step(step)

    # 1. Create the data root and database.
    init = services.init()
    done("library", "charstudio init", f"data root {init.home}, schema {init.schema_revision}")

    # 2. Add the character (replacing an earlier demo run's), then import the photos again.
    library = services.library
    if DEMO_CHARACTER in {c.name for c in library.list_characters()}:
        library.remove(DEMO_CHARACTER, purge=True)
    added = library.create(DEMO_CHARACTER, images, description="charstudio demo subject")
    reimported = library.import_images(DEMO_CHARACTER, images[:1])
    done(
        "references",
        f"charstudio character add {DEMO_CHARACTER} --images ...",
        f"{len(added.added)} photos stored by content hash; importing one again was reported "
        f"as {len(reimported.duplicates)} duplicate",
    )

    # 3. The consistency profile.
    profile = library.profile(DEMO_CHARACTER)
    done(
        "profile",
        f"charstudio character show {DEMO_CHARACTER}",
        f"method {profile.method} ({profile.method_reason})",
    )
    return DemoReport(init=init, added=added, reimported=reimported, profile=profile, steps=steps)
