"""LoRA training: configuration, offline base-model loading, the loop, kohya-format output."""

__all__: list[str] = []
