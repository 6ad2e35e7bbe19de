"""Settings: built once per entry point by :func:`load_settings` and passed down.

Sources, strongest first: keyword arguments, environment variables ``CHARSTUDIO_*``,
a ``charstudio.toml`` (``$CHARSTUDIO_CONFIG``, else ``./charstudio.toml``), defaults.
Nothing below this module reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from charstudio.errors import invalid_parameter_from

__all__ = ["EnvVars", "Settings", "load_settings"]


class EnvVars:
    """Names of the environment variables charstudio reads (all through ``Settings``)."""

    HOME = "CHARSTUDIO_HOME"
    DATABASE_URL = "CHARSTUDIO_DATABASE_URL"
    CONFIG = "CHARSTUDIO_CONFIG"
    DEBUG = "CHARSTUDIO_DEBUG"
    COMFYUI_URLS = "CHARSTUDIO_COMFYUI_URLS"  # also the live test suite's server (the first)
    COMFYUI_CHECKPOINT = "CHARSTUDIO_COMFYUI_CHECKPOINT"


class Settings(BaseSettings):
    """Everything charstudio can be configured with."""

    model_config = SettingsConfigDict(env_prefix="CHARSTUDIO_", extra="forbid", frozen=True)

    home: Path = Field(
        default=Path("charstudio-data"),
        description="Data root: database, references, training sets, LoRAs, outputs.",
    )
    database_url: str | None = Field(
        default=None,
        description="Any SQLAlchemy URL; default sqlite:///<home>/charstudio.db (WAL mode).",
    )
    debug: bool = Field(default=False, description="Show tracebacks on errors.")
    max_image_pixels: int = Field(
        default=64_000_000,
        gt=0,
        description="Refuse images with more pixels than this (decompression-bomb guard).",
    )
    max_image_bytes: int = Field(
        default=200_000_000, gt=0, description="Refuse image files larger than this."
    )
    min_image_side: int = Field(
        default=64, gt=0, description="Refuse reference images smaller than this on a side."
    )
    file_mode: Literal["private", "group"] = Field(
        default="private",
        description="Who may read the data root: private (folders 0700, files 0600) or group "
        "(0750 / 0640, for a group of operators); the api_token file stays 0600.",
    )
    lock_timeout_s: float = Field(
        default=60.0, gt=0, description="How long to wait for another process's lock."
    )
    face_backend: Literal["dlib", "insightface", "ccip"] = Field(
        default="dlib",
        description="Default identity backend: dlib (CC0 weights, commercial use allowed), "
        "insightface (stronger; its model packs are licensed for non-commercial use only) or "
        "ccip (drawn characters). `faces extract --backend` chooses per character.",
    )
    dlib_model_dir: Path | None = Field(
        default=None,
        description="The dlib backend's folder of .dat files (default: the installed "
        "face-recognition-models).",
    )
    insightface_root: Path | None = Field(
        default=None,
        description="The insightface backend's pack root, e.g. ComfyUI's models/insightface "
        "(default ~/.insightface).",
    )
    face_model_root: Path | None = Field(
        default=None,
        description="Older name for the default backend's folder, kept so existing "
        "configurations work: with face_backend dlib it is dlib_model_dir, with insightface "
        "insightface_root (the backend's own setting wins when both are set).",
    )
    face_pack: str | None = Field(
        default=None, description="insightface pack name (default buffalo_l, then antelopev2)."
    )
    ccip_model_dir: Path | None = Field(
        default=None,
        description="The ccip backend's model folder (drawn characters): model_feat.onnx, "
        "model_metrics.onnx and metrics.json (its 'threshold'), as deepghs publishes CCIP.",
    )
    ccip_detector: Path | None = Field(
        default=None,
        description="Optional YOLO-style ONNX character detector (with its labels) for the "
        "ccip backend; none: each image is treated as one character.",
    )
    face_detector: Literal["hog", "cnn"] = Field(
        default="hog", description="dlib face detector: hog (fast) or cnn (more recall)."
    )
    face_workers: int = Field(
        default=2, ge=1, le=64, description="Processes used to analyse faces in a folder."
    )
    tagger: Path | None = Field(
        default=None,
        description="A WD14-style ONNX tagger for training-set captions: a folder with "
        "model.onnx + selected_tags.csv, or <model>.onnx with <model>.csv beside it.",
    )
    qc_clip_model: Path | None = Field(
        default=None,
        description="QC prompt adherence: a local Hugging Face CLIP folder "
        "(CLIPModel.save_pretrained, e.g. openai/clip-vit-large-patch14); none: not checked.",
    )
    qc_tagger: Path | None = Field(
        default=None,
        description="QC prompt adherence by tags: a WD14-style ONNX tagger (same layouts as "
        "CHARSTUDIO_TAGGER); none: not checked.",
    )
    qc_detect_long_side: int = Field(
        default=1024,
        ge=256,
        le=4096,
        description="QC: the long side (px) a generated image is scaled to for dlib's face "
        "detector (faces under ~1/8 of it are not looked for). Lower is faster (640: about "
        "half the time on 512 px images) but dlib's boxes change with the scale, and the "
        "several-people rule compares box areas: at 640 a two-person test photo passed as "
        "one person. Keep 1024 unless speed matters more.",
    )
    comfyui_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:8188"],
        description="ComfyUI servers to generate on, comma-separated; each job goes to a "
        "healthy one with the models it needs and the shortest queue.",
    )
    comfyui_checkpoint: str | None = Field(
        default=None,
        description="Base model file in the servers' models/checkpoints "
        "(e.g. realisticVision_v51.safetensors).",
    )
    comfyui_family: Literal["sd15", "sdxl"] = Field(
        default="sd15", description="Family of the base model: sd15 or sdxl."
    )
    comfyui_openpose_controlnet: str = Field(
        default="control_v11p_sd15_openpose_fp16.safetensors",
        description="OpenPose ControlNet in models/controlnet, used by --variation pose --pose.",
    )
    comfyui_ipadapter_preset: str = Field(
        default="PLUS FACE (portraits)",
        description="IP-Adapter preset: 'PLUS FACE (portraits)', or a FaceID preset such as "
        "'FACEID PLUS V2' for servers with InsightFace (models/insightface/models/buffalo_l).",
    )
    comfyui_request_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for one HTTP answer from ComfyUI."
    )
    comfyui_job_timeout_s: float = Field(
        default=1800.0, gt=0, description="Longest wait for one queued prompt to finish."
    )
    comfyui_lost_after_s: float = Field(
        default=30.0,
        gt=0,
        description="A server that stops answering mid-job for this long counts as lost; "
        "its job is retried once on another server.",
    )
    comfyui_loras_dir: Path | None = Field(
        default=None,
        description="ComfyUI's models/loras folder: each trained LoRA version is copied there.",
    )
    training_device: str | None = Field(
        default=None, description="Device for LoRA training (cuda, cuda:1, cpu); default: best."
    )
    comfyui_models_dir: Path | None = Field(
        default=None,
        description="ComfyUI's models folder: --backend diffusers reads ipadapter/, "
        "clip_vision/, controlnet/ (and checkpoints/ when no diffusers_base_model is set) "
        "from it.",
    )
    diffusers_base_model: Path | None = Field(
        default=None,
        description="Base model for --backend diffusers: a .safetensors/.ckpt file or a "
        "diffusers folder; default: comfyui_checkpoint in comfyui_models_dir/checkpoints.",
    )
    diffusers_config_dir: Path | None = Field(
        default=None,
        description="Component configs (model_index.json, unet/, vae/, ...) for a single-file "
        "base model whose shapes differ from the family's published ones; default: shipped.",
    )
    diffusers_device: str | None = Field(
        default=None,
        description="Device for --backend diffusers (cuda, cuda:1, cpu); default: best.",
    )

    @field_validator("comfyui_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for url in value:
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise ValueError(f"{url!r} is not an http:// or https:// URL")
            return [url.rstrip("/") for url in value]
        return value

    queue_url: str | None = Field(
        default=None,
        description="Job queue: default sqlite:///<home>/queue.db (one box); "
        "redis://HOST:PORT/DB for workers on several machines.",
    )
    job_workers: int = Field(default=1, ge=1, le=32, description="Jobs one worker runs at once.")
    job_heartbeat_s: float = Field(
        default=5.0, gt=0, description="How often a running job shows it is alive."
    )
    job_stale_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job with no heartbeat for this long has lost its worker.",
    )
    job_max_attempts: int = Field(
        default=2, ge=1, le=10, description="Tries a job gets when its worker dies."
    )
    api_token: str | None = Field(
        default=None,
        min_length=16,
        description="Bearer token the API requires; default: the one `charstudio init` "
        "writes to <home>/api_token.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address `charstudio serve` binds.")
    api_port: int = Field(default=8420, ge=1, le=65535, description="Port of the API.")
    api_max_upload_bytes: int = Field(
        default=50_000_000, gt=0, description="Largest upload request the API accepts."
    )
    api_max_files: int = Field(
        default=100, ge=1, le=10_000, description="Most files in one upload request."
    )
    api_cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (none by default)."
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator(
        "dlib_model_dir",
        "insightface_root",
        "face_model_root",
        "ccip_model_dir",
        "ccip_detector",
        "comfyui_models_dir",
        "diffusers_base_model",
        "diffusers_config_dir",
        "qc_clip_model",
        "qc_tagger",
    )
    @classmethod
    def _expand_paths(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _face_model_root_has_a_backend(self) -> Settings:
        if self.face_model_root is not None and self.face_backend == "ccip":
            raise ValueError(
                "face_model_root is the dlib or insightface default backend's folder; with "
                "face_backend ccip set ccip_model_dir (and dlib_model_dir or insightface_root "
                "for characters that use those)"
            )
        return self

    @property
    def dlib_folder(self) -> Path | None:
        """dlib's model folder in force: ``dlib_model_dir``, else ``face_model_root`` when
        dlib is the default backend; ``None``: the installed face-recognition-models."""
        if self.dlib_model_dir is not None or self.face_backend != "dlib":
            return self.dlib_model_dir
        return self.face_model_root

    @property
    def insightface_folder(self) -> Path | None:
        """InsightFace's pack root in force: ``insightface_root``, else ``face_model_root``
        when insightface is the default backend; ``None``: ``~/.insightface``."""
        if self.insightface_root is not None or self.face_backend != "insightface":
            return self.insightface_root
        return self.face_model_root

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL in force."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'charstudio.db').absolute()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(EnvVars.CONFIG, "charstudio.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings for one entry point (CLI, API, worker).

    Raises:
        InvalidParameter: a setting has a bad value; the message names it.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise invalid_parameter_from(
            exc, "invalid setting (fix the CHARSTUDIO_* variable or charstudio.toml)"
        ) from exc
