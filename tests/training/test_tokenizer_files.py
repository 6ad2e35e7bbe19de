"""The CLIP tokenizer derived from OpenAI's BPE merges: the ids the real tokenizer gives."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTokenizer

from charstudio.training.tokenizer_files import (
    NUM_MERGES,
    VOCAB_SIZE,
    byte_symbols,
    clip_vocab_and_merges,
    write_clip_tokenizer,
)


def test_vocabulary_shape() -> None:
    vocab, merges = clip_vocab_and_merges()
    assert len(merges) == NUM_MERGES == 48894
    assert len(vocab) == VOCAB_SIZE == 49408
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    symbols = byte_symbols()
    assert len(set(symbols)) == 256
    assert vocab["!"] == 0 and symbols[0] == "!"
    assert vocab["Ġ"] == symbols.index("Ġ")  # the space byte (0x20) maps to U+0120


def test_tokenizer_gives_the_original_ids(tmp_path: Path) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path / "tok"))
    # Ids of the published openai/clip-vit-large-patch14 tokenizer for these prompts.
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.model_max_length == 77
    assert tokenizer.pad_token_id == 49407


def test_sdxl_second_tokenizer_pads_with_exclamation(tmp_path: Path) -> None:
    folder = write_clip_tokenizer(tmp_path / "tok2", pad_token="!")
    assert json.loads((folder / "special_tokens_map.json").read_text())["pad_token"] == "!"
    assert CLIPTokenizer.from_pretrained(folder).pad_token_id == 0
