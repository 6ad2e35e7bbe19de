"""``charstudio train``: a prepared training set in, a versioned kohya-format LoRA out.

The recipe (:meth:`TrainingService.train`):

1. Validate: the character, its newest training set, the config (or, with ``--resume``,
   the interrupted run and its saved config).
2. Reserve the version row (status ``training``) and the run folder
   ``character_data/training_runs/<name>/v<N>/`` with ``config.yaml``.
3. Train (:class:`~charstudio.training.trainer.Trainer`): checkpoints, samples, loss log.
4. Write ``lora_models/<name>_v<N>.safetensors`` in kohya format with ``ss_*`` metadata and
   ``sshs_*`` hashes, through a temporary file and a rename.
5. Record the version as ``ready`` (file hash, base-model hash, loss curve, samples) and copy
   the file into ComfyUI's ``models/loras`` when one is configured.

A run that fails before its first checkpoint leaves nothing behind (row and folder are
removed); one that has a checkpoint stays ``training`` and ``--resume`` finishes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charstudio.errors import InvalidParameter, storage_errors
from charstudio.library import AssetStore, Library, from_stored, to_stored
from charstudio.library.models import Character, LoraVersion, TrainingSet
from charstudio.training import versions
from charstudio.training.config import TrainingConfig, load_config
from charstudio.training.types import (
    KohyaExport,
    LoraVersionInfo,
    NothingToResume,
    NoTrainingSet,
    TrainingResult,
)

if TYPE_CHECKING:  # the trainer pulls in peft/diffusers: imported only when training
    from charstudio.training.trainer import StepCallback, TrainOutcome

__all__ = ["TrainingService"]

MAX_CURVE_POINTS = 500


class TrainingService:
    """Trains LoRA versions and keeps them in the library."""

    def __init__(
        self,
        *,
        library: Library,
        store: AssetStore,
        comfyui_loras_dir: Path | None = None,
        device: str | None = None,
    ) -> None:
        self.library = library
        self.store = store
        self.comfyui_loras_dir = comfyui_loras_dir
        self.device = device

    # -- train ------------------------------------------------------------------------
    def train(
        self,
        name: str,
        *,
        config: TrainingConfig | None,
        resume: bool = False,
        progress: StepCallback | None = None,
    ) -> TrainingResult:
        """Train (or with ``resume`` finish) a LoRA version. See the module docstring.

        Raises:
            NotFound: no such character; NoTrainingSet: no prepared set.
            NothingToResume / InvalidParameter: bad ``resume``/``config`` combination.
            BaseModelInvalid, OptimizerUnavailable, TrainingInterrupted,
            TrainingOutOfMemory, DiskFull: see ``training/types.py``.
        """
        # 1. Validate.
        stored = self.library.get_name(name)
        if resume == (config is not None):
            raise InvalidParameter(
                "--resume continues with the run's saved config.yaml; drop --config/--set"
                if resume
                else "a config is needed to start a training run"
            )
        if config is not None and config.model.base_checkpoint is None:
            raise InvalidParameter(
                "model.base_checkpoint is not set; set it in the config or with "
                "--set model.base_checkpoint=/path/to/realisticVision_v51.safetensors"
            )
        self.store.ensure_writable()
        with self.store.character_lock(stored):
            # 2. Reserve the version (or find the run to resume).
            row_id, version, run_dir, config = self._open_run(stored, config, resume)
            # 3. Train.
            outcome = self._run_trainer(stored, row_id, run_dir, config, resume, progress)
            # 4. Write the file; 5. record it.
            return self._finish(stored, row_id, version, run_dir, config, outcome)

    def _character(self, session: Session, name: str) -> tuple[Character, TrainingSet]:
        character = session.scalar(select(Character).where(Character.name == name))
        assert character is not None
        training_set = session.scalar(
            select(TrainingSet)
            .where(TrainingSet.character_id == character.id)
            .order_by(TrainingSet.version.desc())
        )
        if training_set is None:
            raise NoTrainingSet(
                f"{name!r} has no prepared training set; run `charstudio dataset prepare {name}` "
                "first"
            )
        return character, training_set

    def run_dir(self, name: str, version: int) -> Path:
        return self.store.character_data / "training_runs" / name / f"v{version}"

    def lora_file(self, name: str, version: int) -> Path:
        return self.store.lora_dir / f"{name}_v{version}.safetensors"

    def _open_run(
        self, name: str, config: TrainingConfig | None, resume: bool
    ) -> tuple[int, int, Path, TrainingConfig]:
        with self.library.db.sessions.begin() as session:
            character, training_set = self._character(session, name)
            if resume:
                row = versions.resumable(session, character.id)
                if row is None:
                    raise NothingToResume(
                        f"{name} has no interrupted training run to resume; start one with "
                        f"`charstudio train {name}`"
                    )
                run_dir = self.run_dir(name, row.version)
                return row.id, row.version, run_dir, load_config(run_dir / "config.yaml")
            assert config is not None
            base = config.model.base_checkpoint
            row = versions.reserve(
                session,
                character_id=character.id,
                training_set=training_set,
                path=self._stored_path(self.lora_file(name, 0)),
                config=config.model_dump(mode="json"),
                base_model=base.name if base else "",
            )
            row.path = self._stored_path(self.lora_file(name, row.version))
            run_dir = self.run_dir(name, row.version)
        shutil.rmtree(run_dir, ignore_errors=True)
        with storage_errors(run_dir):
            run_dir.mkdir(parents=True)
            (run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        return row.id, row.version, run_dir, config

    def _run_trainer(
        self,
        name: str,
        row_id: int,
        run_dir: Path,
        config: TrainingConfig,
        resume: bool,
        progress: StepCallback | None,
    ) -> TrainOutcome:
        with self.library.db.sessions() as session:
            character, training_set = self._character(session, name)
            trigger = character.trigger_word
            set_folder = from_stored(self.store.home, training_set.path)
        from charstudio.training.checkpoints import latest_checkpoint
        from charstudio.training.trainer import Trainer, TrainRequest

        request = TrainRequest(
            config=config,
            name=name,
            trigger_word=trigger,
            set_folder=set_folder,
            run_dir=run_dir,
            resume=resume,
            device=self.device,
        )
        try:
            return Trainer(request, progress=progress).run()
        except BaseException:
            if latest_checkpoint(run_dir) is None:  # nothing to resume: leave no trace
                with self.library.db.sessions.begin() as session:
                    row = session.get(LoraVersion, row_id)
                    if row is not None:
                        session.delete(row)
                shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def _finish(
        self,
        name: str,
        row_id: int,
        version: int,
        run_dir: Path,
        config: TrainingConfig,
        outcome: TrainOutcome,
    ) -> TrainingResult:
        with self.library.db.sessions() as session:
            reserved = session.get(LoraVersion, row_id)
            assert reserved is not None and reserved.training_set_id is not None
            training_set = session.get(TrainingSet, reserved.training_set_id)
            assert training_set is not None
            set_version, set_hash = training_set.version, training_set.content_hash
        from charstudio.training.checkpoints import read_loss_log
        from charstudio.training.output import copy_into_comfyui, write_lora_file

        config = outcome.config or config
        log = read_loss_log(run_dir / "loss.jsonl")
        curve = [(int(r["step"]), float(r["loss"])) for r in log if "loss" in r]
        steps = curve[-1][0] if curve else 0
        file = self.lora_file(name, version)
        sha256 = write_lora_file(
            file,
            name=name,
            version=version,
            config=config,
            outcome=outcome,
            steps=steps,
            set_version=set_version,
            set_hash=set_hash,
        )
        samples = sorted(str(p) for p in (run_dir / "samples").rglob("*.png"))
        copied, warnings = copy_into_comfyui(self.comfyui_loras_dir, file)
        metrics = {
            "steps": steps,
            "first_loss": curve[0][1] if curve else None,
            "final_loss": curve[-1][1] if curve else None,
            "loss_curve": _thin(curve),
            "fixed_loss": {str(r["step"]): r["fixed_loss"] for r in log if "fixed_loss" in r},
            "samples": [self._stored_path(Path(p)) for p in samples],
            "run_dir": self._stored_path(run_dir),
            "device": outcome.device,
            "precision": outcome.precision,
            "seconds": outcome.seconds,
            "trigger_word": outcome.training_set.trigger_word,
            "training_set_version": set_version,
        }
        with self.library.db.sessions.begin() as session:
            row = session.get(LoraVersion, row_id)
            assert row is not None
            row.status, row.sha256, row.metrics = "ready", sha256, metrics
            row.base_model = outcome.base.path.name
            row.base_model_sha256 = outcome.base.sha256
            parent = session.get(LoraVersion, row.parent_id) if row.parent_id else None
            parent_version = parent.version if parent else None
        return TrainingResult(
            character=name,
            version=version,
            path=str(file),
            sha256=sha256,
            steps=steps,
            first_loss=metrics["first_loss"] or 0.0,
            final_loss=metrics["final_loss"] or 0.0,
            loss_log=str(run_dir / "loss.jsonl"),
            samples=samples,
            run_dir=str(run_dir),
            base_model=outcome.base.path.name,
            base_model_sha256=outcome.base.sha256,
            training_set_version=set_version,
            parent_version=parent_version,
            device=outcome.device,
            precision=outcome.precision,
            resumed_from_step=outcome.resumed_from,
            copied_to=str(copied) if copied else None,
            warnings=[*outcome.notes, *warnings],
            seconds=outcome.seconds,
        )

    def _stored_path(self, path: Path) -> str:
        """Paths under the data root are stored relative to it."""
        return to_stored(self.store.home, path)

    # -- kohya export -----------------------------------------------------------------
    def export_kohya(self, name: str, *, config: TrainingConfig) -> KohyaExport:
        """Write the equivalent sd-scripts command and dataset TOML instead of training.

        Raises:
            InvalidParameter: ``model.base_checkpoint`` is not set.
            NoTrainingSet: no prepared set.
        """
        from charstudio.training.kohya_export import export_kohya

        stored = self.library.get_name(name)
        if config.model.base_checkpoint is None:
            raise InvalidParameter(
                "model.base_checkpoint is not set; the kohya command needs it: "
                "--set model.base_checkpoint=/path/to/model.safetensors"
            )
        with self.library.db.sessions() as session:
            character, training_set = self._character(session, stored)
            newest = session.scalar(
                select(func.max(LoraVersion.version)).where(
                    LoraVersion.character_id == character.id
                )
            )
            trigger = character.trigger_word
            folder = from_stored(self.store.home, training_set.path)
        out = self.store.character_data / "training_runs" / stored / "kohya_export"
        with storage_errors(out):  # the export only writes under ``out``
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
            return export_kohya(
                config,
                set_folder=folder,
                trigger_word=trigger,
                out=out,
                output_name=f"{stored}_v{(newest or 0) + 1}",
                lora_dir=self.store.lora_dir,
            )

    # -- versions ---------------------------------------------------------------------
    def list_versions(self, name: str) -> list[LoraVersionInfo]:
        stored = self.library.get_name(name)
        with self.library.db.sessions() as session:
            character = session.scalar(select(Character).where(Character.name == stored))
            assert character is not None
            rows = session.scalars(
                select(LoraVersion)
                .where(LoraVersion.character_id == character.id)
                .order_by(LoraVersion.version)
            )
            return [versions.info(session, row, self._file_of(row)) for row in rows]

    def promote(self, name: str, version: str) -> LoraVersionInfo:
        number = versions.parse_version(version)
        stored = self.library.get_name(name)
        with self.library.db.sessions.begin() as session:
            character = session.scalar(select(Character).where(Character.name == stored))
            assert character is not None
            row = versions.require_version(session, character.id, stored, number)
            versions.promote(session, row, name=stored, file=self._file_of(row))
            session.flush()
            return versions.info(session, row, self._file_of(row))

    def _file_of(self, row: LoraVersion) -> Path:
        return from_stored(self.store.home, row.path)


def _thin(curve: list[tuple[int, float]]) -> list[list[float]]:
    """At most MAX_CURVE_POINTS points, evenly spaced, always keeping the last."""
    stride = max(1, -(-len(curve) // MAX_CURVE_POINTS))
    kept = curve[::stride]
    if curve and kept[-1] != curve[-1]:
        kept.append(curve[-1])
    return [[step, loss] for step, loss in kept]
