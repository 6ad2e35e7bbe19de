"""The composition root: every service built from one :class:`Settings`, in one place.

Entry points (CLI, API, worker) call :func:`build_services` once and pass what it returns
down; nothing else constructs services or reads settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from charstudio.backends import (
    Backend,
    ClientOptions,
    ComfyUIBackend,
    GenerationDefaults,
    GenerationService,
    PoolOptions,
)
from charstudio.backends.diffusers_options import DiffusersOptions
from charstudio.config import Settings
from charstudio.dataset import DatasetService
from charstudio.faces.registry import BackendSpec, backend_from_spec
from charstudio.faces.service import FaceService
from charstudio.faces.types import BackendName
from charstudio.lab import LabService
from charstudio.library import (
    AssetStore,
    Database,
    ImageLimits,
    Library,
    head_revision,
    open_database,
)
from charstudio.library.database import Migrate
from charstudio.library.marker import check_data_root
from charstudio.qc import QCService
from charstudio.training import TrainingService

if TYPE_CHECKING:
    from charstudio.backends.diffusers_pipelines import PipelineCache

__all__ = ["InitResult", "Services", "build_services"]


class InitResult(BaseModel):
    """What ``charstudio init`` set up."""

    model_config = ConfigDict(frozen=True)

    home: str
    database: str
    schema_revision: str
    folders: list[str]
    api_token_file: str
    templates: list[str] = []
    library_id: str = ""


@dataclass
class Services:
    """charstudio's services; the database opens on first use, not at start-up.

    ``migrate`` says whether opening the database may create or upgrade its schema
    (:func:`~charstudio.library.database.open_database`): a worker sets ``"never"``,
    ``charstudio init`` and ``charstudio db upgrade`` ``"always"``.
    """

    settings: Settings
    migrate: Migrate = field(default="auto")

    @cached_property
    def store(self) -> AssetStore:
        timeout = self.settings.lock_timeout_s
        return AssetStore(
            self.settings.home,
            lock_timeout_s=timeout,
            file_mode=self.settings.file_mode,
            shared_lock=lambda key: self.db.lock(key, timeout_s=timeout),
        )

    @cached_property
    def db(self) -> Database:
        if self.settings.database_url is None:
            # The default SQLite file lives in the data root, so the root must exist first.
            self.store.ensure_writable()
        return open_database(
            self.settings.db_url,
            file_mode=self.store.file_mode,
            migrate=self.migrate,
            data_root=self.store.home,
        )

    @cached_property
    def library(self) -> Library:
        return Library(
            db=self.db,
            store=self.store,
            limits=ImageLimits(
                max_pixels=self.settings.max_image_pixels,
                max_bytes=self.settings.max_image_bytes,
                min_side=self.settings.min_image_side,
            ),
        )

    @cached_property
    def faces(self) -> FaceService:
        settings = self.settings
        # Each backend has its own folder settings (Settings.dlib_folder and
        # insightface_folder also honour the older face_model_root), so a character whose
        # identity names a backend other than the default finds its models too.
        specs: dict[BackendName, BackendSpec] = {
            "dlib": BackendSpec(
                name="dlib", model_root=settings.dlib_folder, detector=settings.face_detector
            ),
            "insightface": BackendSpec(
                name="insightface",
                model_root=settings.insightface_folder,
                pack=settings.face_pack,
            ),
            "ccip": BackendSpec(
                name="ccip",
                model_root=settings.ccip_model_dir,
                character_detector=settings.ccip_detector,
            ),
        }
        default = specs[settings.face_backend]
        return FaceService(
            library=self.library,
            store=self.store,
            spec=default,
            specs=specs,
            workers=settings.face_workers,
        )

    @cached_property
    def qc(self) -> QCService:
        """Quality control; a bad CLIP folder or tagger setting is refused here, named."""
        return QCService(
            library=self.library,
            store=self.store,
            spec=self._qc_spec(self.faces.spec),
            specs={name: self._qc_spec(spec) for name, spec in self.faces.specs.items()},
            clip_model=self.settings.qc_clip_model,
            tagger=self.settings.qc_tagger,
            device=self.settings.diffusers_device or "cpu",
        )

    def _qc_spec(self, spec: BackendSpec) -> BackendSpec:
        """QC's dlib detects on its own smaller copy; other backends are shared as they are
        (a different spec would load their models a second time)."""
        if spec.name != "dlib":
            return spec
        return replace(spec, detect_long_side=self.settings.qc_detect_long_side)

    @cached_property
    def lab(self) -> LabService:
        """The consistency lab: tune runs and measured reports."""
        return LabService(
            library=self.library,
            store=self.store,
            db=self.db,
            generation=self.generation,
            qc=self.qc,
        )

    @cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(faces=self.faces, store=self.store)

    @cached_property
    def training(self) -> TrainingService:
        return TrainingService(
            library=self.library,
            store=self.store,
            comfyui_loras_dir=self.settings.comfyui_loras_dir,
            device=self.settings.training_device,
        )

    @cached_property
    def generation(self) -> GenerationService:
        settings = self.settings
        diffusers = DiffusersOptions(
            base_model=settings.diffusers_base_model,
            config_dir=settings.diffusers_config_dir,
            models_dir=settings.comfyui_models_dir,
            device=settings.diffusers_device,
        )
        return GenerationService(
            library=self.library,
            store=self.store,
            db=self.db,
            defaults=GenerationDefaults(
                checkpoint=settings.comfyui_checkpoint
                or (settings.diffusers_base_model.name if settings.diffusers_base_model else None),
                family=settings.comfyui_family,
                openpose_controlnet=settings.comfyui_openpose_controlnet,
                ipadapter_preset=settings.comfyui_ipadapter_preset,
            ),
            backends={
                "comfyui": lambda: self.comfyui,
                "diffusers": lambda: self._diffusers_backend(diffusers),
            },
            faces=lambda: backend_from_spec(self.faces.spec),
        )

    @cached_property
    def comfyui(self) -> ComfyUIBackend:
        """The ComfyUI pool of this process (kept across jobs: health, catalogs, load)."""
        settings = self.settings
        options = PoolOptions(
            client=ClientOptions(
                request_timeout_s=settings.comfyui_request_timeout_s,
                job_timeout_s=settings.comfyui_job_timeout_s,
                lost_after_s=settings.comfyui_lost_after_s,
            )
        )
        return ComfyUIBackend(settings.comfyui_urls, options=options)

    @cached_property
    def _pipelines(self) -> PipelineCache:
        """Base models the diffusers backend keeps loaded between generations."""
        from charstudio.backends.diffusers_pipelines import PipelineCache

        return PipelineCache()

    def _diffusers_backend(self, options: DiffusersOptions) -> Backend:
        # Imported here: torch and diffusers load only when the backend is used.
        from charstudio.backends.diffusers_backend import DiffusersBackend

        return DiffusersBackend(options, cache=self._pipelines)

    def init(self) -> InitResult:
        """Create the data root's folders and the database at the newest schema, and mark
        the root as this library's (``library.json``; a root of another library is
        refused)."""
        return self._set_up(may_mark=True)

    def start(self) -> InitResult:
        """:meth:`init` for ``serve`` and ``worker``: first refuse a data root that is not
        the database's library (no marker, or another library's), so a machine whose
        shared mount is missing writes nothing."""
        return self._set_up(may_mark=False)

    def _set_up(self, *, may_mark: bool) -> InitResult:
        db = self.db
        # A library this call created has no marker yet: that one may be written.
        check_data_root(self.store, db, may_write=may_mark or db.found is None)
        self.store.create_layout()
        self.store.ensure_api_token()
        return InitResult(
            home=str(self.store.home),
            database=db.engine.url.render_as_string(hide_password=True),
            schema_revision=head_revision(),
            folders=[str(p) for p in self.store.layout()],
            api_token_file=str(self.store.api_token_file),
            templates=[str(p) for p in self.generation.write_templates()],
            library_id=db.library_id,
        )

    def close(self) -> None:
        if "comfyui" in self.__dict__:
            self.comfyui.close()
        if "library" in self.__dict__:
            self.library.listing.close()
        if "db" in self.__dict__:
            self.db.engine.dispose()


def build_services(settings: Settings) -> Services:
    """Build the services for one entry point."""
    return Services(settings=settings)
