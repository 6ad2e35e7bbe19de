"""Prompt adherence by CLIP image-text similarity, with a local Hugging Face CLIP folder.

The folder is what ``save_pretrained`` writes for ``CLIPModel`` (for example
openai/clip-vit-large-patch14): ``config.json`` with ``model_type: clip``, the weights,
``preprocessor_config.json`` and the tokenizer files. Nothing is downloaded
(``local_files_only=True``).

**The rule.** A raw CLIP cosine means little on its own (its scale differs per model), so
the subject caption is compared with neutral captions of the *same* image. The captions are
the variation's subject put in a sentence (outfit: "a photo of a person wearing {subject}",
background: "a photo of a person in {subject}", pose: "a photo of a person {subject}",
none: "a photo of {subject}") and :data:`NEUTRAL_CAPTIONS`; the score is the subject
caption's softmax probability among them at the model's own logit scale. Chance is
1 / (1 + 3) = 0.25; the default threshold 0.5 means "the subject describes the image better
than all neutral captions together", which holds across model sizes because it compares the
model with itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from charstudio.errors import BackendUnavailable, InvalidParameter
from charstudio.qc.types import CheckResult, QCRequest

__all__ = [
    "CAPTIONS",
    "DEFAULT_CLIP_THRESHOLD",
    "NEUTRAL_CAPTIONS",
    "ClipScorer",
    "check_clip_folder",
]

DEFAULT_CLIP_THRESHOLD = 0.5
NEUTRAL_CAPTIONS = ("a photo", "a photo of a person", "an image of a person")
CAPTIONS = {
    "outfit": "a photo of a person wearing {}",
    "background": "a photo of a person in {}",
    "pose": "a photo of a person {}",
    None: "a photo of {}",
}
_NEEDED = ("config.json", "preprocessor_config.json")


def check_clip_folder(folder: Path) -> Path:
    """Refuse a folder that is not a Hugging Face CLIP model, naming the file at fault.

    Raises:
        InvalidParameter: missing folder or file, or a config that is not CLIP's.
    """
    if not folder.is_dir():
        raise InvalidParameter(
            f"CLIP model folder {folder} not found; set CHARSTUDIO_QC_CLIP_MODEL to a folder "
            "saved by CLIPModel.save_pretrained (config.json, weights, tokenizer files)"
        )
    for name in _NEEDED:
        if not (folder / name).is_file():
            raise InvalidParameter(
                f"{folder / name} not found: {folder} is not a Hugging Face CLIP model folder"
            )
    config_file = folder / "config.json"
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise InvalidParameter(f"{config_file} is not a readable JSON config ({exc})") from exc
    if model_type != "clip":
        raise InvalidParameter(
            f"{config_file} describes a {model_type!r} model, not a CLIP model "
            "(model_type 'clip'); give a CLIPModel folder such as openai/clip-vit-large-patch14"
        )
    return folder


class ClipScorer:
    """CLIP image-text adherence (see the module's rule)."""

    name = "clip"

    def __init__(self, folder: Path, *, device: str = "cpu") -> None:
        """Load the model and processor from ``folder``.

        Raises:
            InvalidParameter: not a CLIP folder, or its files cannot be loaded.
            BackendUnavailable: transformers or torch are not installed.
        """
        self.folder = check_clip_folder(folder)
        try:
            import torch
            from transformers import CLIPModel, CLIPProcessor
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise BackendUnavailable(f"CLIP scoring needs torch and transformers ({exc})") from exc
        model: Any
        processor: Any
        try:
            model = CLIPModel.from_pretrained(folder, local_files_only=True)
            processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise InvalidParameter(f"CLIP model {folder} cannot be loaded ({exc})") from exc
        self._model: Any = model.to(device).eval()
        self._processor: Any = processor
        self._torch = torch
        self._text_cache: dict[str, Any] = {}
        self.device = device
        self.model = f"{folder.name} ({model.config.vision_config.image_size} px)"

    def probabilities(self, image: Image.Image, caption: str) -> list[float]:
        """Softmax over ``[caption, *NEUTRAL_CAPTIONS]`` at the model's logit scale.

        What ``CLIPModel.forward`` computes, with the captions' embeddings kept: the neutral
        captions are embedded once, a subject caption once per distinct text, so each image
        costs only the vision tower.
        """
        torch = self._torch
        texts = self._texts([caption, *NEUTRAL_CAPTIONS])
        pixels = self._processor(images=image.convert("RGB"), return_tensors="pt")
        with torch.inference_mode():
            vision = self._model.vision_model(pixel_values=pixels["pixel_values"].to(self.device))
            embedded = self._model.visual_projection(vision.pooler_output)
            embedded = embedded / embedded.norm(dim=-1, keepdim=True)
            logits = self._model.logit_scale.exp() * embedded @ texts.T
        return [float(p) for p in logits[0].softmax(dim=-1)]

    def _texts(self, captions: list[str]) -> Any:
        """The captions' normalised text embeddings (N, D), from the cache where known."""
        torch = self._torch
        missing = [c for c in captions if c not in self._text_cache]
        if missing:
            tokens = self._processor(text=missing, return_tensors="pt", padding=True)
            with torch.inference_mode():
                out = self._model.text_model(
                    input_ids=tokens["input_ids"].to(self.device),
                    attention_mask=tokens["attention_mask"].to(self.device),
                )
                embedded = self._model.text_projection(out.pooler_output)
                embedded = embedded / embedded.norm(dim=-1, keepdim=True)
            if len(self._text_cache) > 256:  # a job's captions repeat; bound the rest
                self._text_cache.clear()
            self._text_cache.update(zip(missing, embedded, strict=True))
        return torch.stack([self._text_cache[c] for c in captions])

    def check(
        self, image: Image.Image, request: QCRequest, *, threshold: float | None
    ) -> CheckResult:
        limit = DEFAULT_CLIP_THRESHOLD if threshold is None else threshold
        subject = request.subject_text
        if not subject:
            return CheckResult(
                check="adherence_clip",
                scorer=self.name,
                model=self.model,
                score=None,
                threshold=limit,
                status="not_checked",
                reason="no prompt to score",
            )
        caption = CAPTIONS[request.variation].format(subject)
        score = self.probabilities(image, caption)[0]
        passed = score >= limit
        return CheckResult(
            check="adherence_clip",
            scorer=self.name,
            model=self.model,
            score=round(score, 4),
            threshold=limit,
            status="pass" if passed else "fail",
            reason=f"{caption!r} {'beats' if passed else 'loses to'} the neutral captions "
            f"(p={score:.2f})",
        )
