"""The CLIP tokenizer files, derived offline from OpenAI CLIP's published BPE merge list.

Stable Diffusion's text encoders (SD1.5's CLIP ViT-L/14; both of SDXL's) use OpenAI CLIP's
tokenizer. Hugging Face ships it as ``vocab.json`` + ``merges.txt``; OpenAI published the same
thing as ``bpe_simple_vocab_16e6.txt.gz`` (MIT licence, shipped beside this module in
``clip_bpe/``). The derivation follows OpenAI's ``SimpleTokenizer`` (``clip/simple_tokenizer.py``):

1. merges = lines 1..48894 of the file (line 0 is the ``#version`` header);
2. vocabulary = the 256 byte symbols (GPT-2's byte-to-unicode table, in its order), the same
   256 with ``</w>`` appended, one entry per merge (the two halves joined), then
   ``<|startoftext|>`` and ``<|endoftext|>`` — 49,408 tokens, start 49406, end 49407.

Token ids then match the original tokenizer (docs/ARCHITECTURE.md, "Facts checked").
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

__all__ = [
    "BOS_TOKEN",
    "EOS_TOKEN",
    "NUM_MERGES",
    "VOCAB_SIZE",
    "byte_symbols",
    "clip_vocab_and_merges",
    "write_clip_tokenizer",
]

NUM_MERGES = 49152 - 256 - 2  # 48,894: OpenAI's slice merges[1 : 49152 - 256 - 2 + 1]
VOCAB_SIZE = 256 * 2 + NUM_MERGES + 2  # 49,408
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MODEL_MAX_LENGTH = 77


def byte_symbols() -> list[str]:
    """GPT-2's reversible byte-to-unicode table, as the list of 256 symbols in vocab order.

    Printable Latin-1 bytes stand for themselves; the other bytes (controls, space, ...) are
    given the code points from 256 upwards, in byte order, after the printable ones.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    seen = set(printable)
    symbols = [chr(b) for b in printable]
    extra = 0
    for byte in range(256):
        if byte not in seen:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """The CLIP vocabulary (token -> id) and merge lines, derived from the shipped BPE file."""
    bpe = resources.files("charstudio.training").joinpath("clip_bpe/bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}, merges


def write_clip_tokenizer(folder: Path, *, pad_token: str = EOS_TOKEN) -> Path:
    """Write a Hugging Face ``CLIPTokenizer`` folder (SDXL's second tokenizer pads with ``!``).

    Returns:
        ``folder``, holding ``vocab.json``, ``merges.txt``, ``tokenizer_config.json`` and
        ``special_tokens_map.json``.
    """
    vocab, merges = clip_vocab_and_merges()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    special = {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": EOS_TOKEN,
        "pad_token": pad_token,
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    config = {
        **special,
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MODEL_MAX_LENGTH,
        "do_lower_case": True,
        "errors": "replace",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder
