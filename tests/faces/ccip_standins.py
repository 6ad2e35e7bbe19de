"""Stand-in CCIP models and drawn test characters, built at test time.

The stand-ins have the real CCIP files' names, input/output names, shapes and dtypes:

- ``model_feat.onnx``: ``input`` (N, 3, 384, 384) float32 -> ``output`` (N, 768). It embeds
  the image's *colour distribution*: each pixel's (CLIP-normalised) colour goes through 768
  fixed random Fourier features ``cos(W x + b)`` (a 1x1 convolution and ``Cos``), averaged
  over the image. Two drawings of one character (same palette, any pose or place) get
  nearly the same vector; characters with other palettes, or photographs, do not.
- ``model_metrics.onnx``: ``input`` (N, 768) -> ``output`` (N, N) differences
  ``clip(1.5 * (1 - cosine), 0, 1)`` of the L2-normalised rows. The factor 1.5 makes the
  difference differ from ``1 - cosine``, so a test can tell the metrics model was used.
- ``metrics.json``: ``{"threshold": 0.178}``, the published threshold of
  ccip-caformer-24-randaug-pruned.
- a YOLO-style character detector (``images`` (1, 3, 640, 640) -> ``output0`` (1, 5, 2),
  labels ``{0: 'person'}`` in its metadata) with two fixed candidate boxes: the left
  400 px of the picture and its right 160 px, each scored by how much "ink" (non-white)
  it holds.

What they compute is simple and predictable, so tests know the expected answers; they say
nothing about the real CCIP's accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

from charstudio.faces.ccip_backend import CLIP_MEAN, CLIP_STD

FEATURE_DIM = 768
THRESHOLD = 0.178
METRIC_SCALE = 1.5
DETECTOR_SIZE = 640
LEFT_BOX = (0, 0, 400, 640)
RIGHT_BOX = (480, 0, 640, 640)

# Palettes of drawn characters: hair, skin, outfit, eyes.
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "akane": ((200, 30, 40), (250, 220, 200), (40, 60, 170), (30, 120, 60)),
    "midori": ((40, 160, 70), (240, 200, 170), (230, 200, 40), (120, 40, 140)),
}


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(array, name)
    )


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None = None) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def build_feature_model(
    path: Path, *, size: int = 384, dim: int = FEATURE_DIM, seed: int = 0
) -> None:
    """Write the stand-in ``model_feat.onnx`` (input ``(N, 3, size, size)``)."""
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((dim, 3, 1, 1)) * 2.5).astype(np.float32)
    bias = rng.uniform(0, 2 * np.pi, dim).astype(np.float32)
    # Undo CLIP's normalisation to weigh each pixel by its "ink": 1 - its darkest channel,
    # 0 on a white background, so the features describe the character, not the paper.
    std = np.asarray(CLIP_STD, np.float32).reshape(1, 3, 1, 1)
    mean = np.asarray(CLIP_MEAN, np.float32).reshape(1, 3, 1, 1)
    nodes = [
        helper.make_node(
            "AveragePool", ["input"], ["small"], name="shrink", kernel_shape=[4, 4], strides=[4, 4]
        ),
        _const("std", std),
        _const("mean", mean),
        _const("one", np.array(1.0, np.float32)),
        helper.make_node("Mul", ["small", "std"], ["scaled"], name="unscale"),
        helper.make_node("Add", ["scaled", "mean"], ["raw"], name="unshift"),
        helper.make_node("ReduceMin", ["raw"], ["darkest"], name="darkest", axes=[1], keepdims=1),
        helper.make_node("Sub", ["one", "darkest"], ["ink"], name="ink"),
        _const("w", weights),
        _const("b", bias),
        helper.make_node("Conv", ["small", "w", "b"], ["proj"], name="project"),
        helper.make_node("Cos", ["proj"], ["rff"], name="fourier"),
        helper.make_node("Mul", ["rff", "ink"], ["weighted"], name="weigh"),
        helper.make_node("GlobalAveragePool", ["weighted"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["output"], name="flatten", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "ccip_feat_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", dim])],
    )
    _save(graph, path)


def build_metrics_model(path: Path, *, dim: int = FEATURE_DIM) -> None:
    """Write the stand-in ``model_metrics.onnx``: ``(N, dim)`` -> ``(N, N)`` differences."""
    nodes = [
        helper.make_node("ReduceL2", ["input"], ["norm"], name="norm", axes=[1], keepdims=1),
        helper.make_node("Div", ["input", "norm"], ["unit"], name="unit"),
        helper.make_node("Transpose", ["unit"], ["unit_t"], name="transpose", perm=[1, 0]),
        helper.make_node("MatMul", ["unit", "unit_t"], ["cos"], name="cosine"),
        _const("one", np.array(1.0, np.float32)),
        _const("scale", np.array(METRIC_SCALE, np.float32)),
        _const("zero", np.array(0.0, np.float32)),
        helper.make_node("Sub", ["one", "cos"], ["gap"], name="gap"),
        helper.make_node("Mul", ["gap", "scale"], ["scaled"], name="scaled"),
        helper.make_node("Clip", ["scaled", "zero", "one"], ["output"], name="clip"),
    ]
    graph = helper.make_graph(
        nodes,
        "ccip_metrics_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", "N"])],
    )
    _save(graph, path)


def build_ccip_folder(folder: Path, *, threshold: float | None = THRESHOLD) -> Path:
    """A CCIP model folder as users keep it: both models and ``metrics.json``."""
    build_feature_model(folder / "model_feat.onnx")
    build_metrics_model(folder / "model_metrics.onnx")
    meta: dict[str, float] = {"f1_score": 0.917}
    if threshold is not None:
        meta["threshold"] = threshold
    (folder / "metrics.json").write_text(json.dumps(meta))
    return folder


def build_detector(path: Path, *, labels: bool = True) -> None:
    """Write the stand-in YOLO detector (see the module docstring)."""
    nodes: list[onnx.NodeProto] = [
        _const("white", np.array(1.0, np.float32)),
        _const("knee", np.array(0.02, np.float32)),
        _const("gain", np.array(20.0, np.float32)),
        _const("axes3", np.array([3], np.int64)),
        _const("zero1", np.array(0.0, np.float32)),
        _const("one1", np.array(1.0, np.float32)),
    ]
    scores = []
    for tag, (x0, _, x1, _) in (("l", LEFT_BOX), ("r", RIGHT_BOX)):
        nodes += [
            _const(f"start_{tag}", np.array([x0], np.int64)),
            _const(f"end_{tag}", np.array([x1], np.int64)),
            helper.make_node(
                "Slice", ["images", f"start_{tag}", f"end_{tag}", "axes3"], [f"part_{tag}"]
            ),
            helper.make_node(
                "ReduceMean", [f"part_{tag}"], [f"mean_{tag}"], axes=[1, 2, 3], keepdims=1
            ),
            helper.make_node("Sub", ["white", f"mean_{tag}"], [f"ink_{tag}"]),
            helper.make_node("Sub", [f"ink_{tag}", "knee"], [f"over_{tag}"]),
            helper.make_node("Mul", [f"over_{tag}", "gain"], [f"raw_{tag}"]),
            helper.make_node("Clip", [f"raw_{tag}", "zero1", "one1"], [f"score_{tag}"]),
        ]
        scores.append(f"score_{tag}")
    boxes = np.array(
        [
            [
                [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]]
                for b in (LEFT_BOX, RIGHT_BOX)
            ]
        ],
        np.float32,
    ).transpose(0, 2, 1)  # (1, 4, 2): cx, cy, w, h per candidate
    nodes += [
        _const("boxes", boxes),
        helper.make_node("Concat", scores, ["score_row"], axis=3),  # (1, 1, 1, 2)
        _const("row_shape", np.array([1, 1, 2], np.int64)),
        helper.make_node("Reshape", ["score_row", "row_shape"], ["score_1x1x2"]),
        helper.make_node("Concat", ["boxes", "score_1x1x2"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "yolo_character_standin",
        [
            helper.make_tensor_value_info(
                "images", TensorProto.FLOAT, [1, 3, DETECTOR_SIZE, DETECTOR_SIZE]
            )
        ],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 2])],
    )
    metadata = {"imgsz": f"[{DETECTOR_SIZE}, {DETECTOR_SIZE}]"}
    if labels:
        metadata["names"] = "{0: 'person'}"
    _save(graph, path, metadata)


def draw_character(
    draw: ImageDraw.ImageDraw, palette: str, *, x: int, y: int, scale: float, arms: int
) -> None:
    """A flat-coloured, black-outlined figure (the look of a drawn character) at (x, y)."""
    hair, skin, outfit, eyes = PALETTES[palette]
    s = scale

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (round(x + x0 * s), round(y + y0 * s), round(x + x1 * s), round(y + y1 * s))

    line = max(2, round(3 * s))
    draw.polygon(
        [
            box(20, 100, 0, 0)[:2],
            box(100, 100, 0, 0)[:2],
            box(120, 260, 0, 0)[:2],
            box(0, 260, 0, 0)[:2],
        ],
        fill=outfit,
        outline=(0, 0, 0),
        width=line,
    )
    lift = (0, -40, 40)[arms % 3]
    draw.line(
        [box(25, 120, 0, 0)[:2], box(-20, 200 + lift, 0, 0)[:2]], fill=skin, width=round(14 * s)
    )
    draw.line(
        [box(95, 120, 0, 0)[:2], box(140, 200 - lift, 0, 0)[:2]], fill=skin, width=round(14 * s)
    )
    draw.ellipse(box(10, -10, 110, 110), fill=hair, outline=(0, 0, 0), width=line)
    draw.ellipse(box(22, 20, 98, 105), fill=skin, outline=(0, 0, 0), width=line)
    draw.ellipse(box(35, 50, 52, 70), fill=eyes, outline=(0, 0, 0), width=1)
    draw.ellipse(box(68, 50, 85, 70), fill=eyes, outline=(0, 0, 0), width=1)
    draw.rectangle(box(0, 255, 120, 300), fill=outfit, outline=(0, 0, 0), width=line)


def drawing(
    palette: str,
    *,
    variant: int = 0,
    size: tuple[int, int] = (512, 640),
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """One drawing of a character; ``variant`` moves, scales and poses it."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    scale = 1.4 + 0.25 * (variant % 3)
    draw_character(
        draw,
        palette,
        x=60 + 40 * (variant % 4),
        y=60 + 20 * (variant % 2),
        scale=scale,
        arms=variant,
    )
    return np.asarray(image)


def two_character_scene(main: str, other: str) -> np.ndarray:
    """A 640 px picture: ``main`` large in the left 400 px, ``other`` small at the right."""
    image = Image.new("RGB", (DETECTOR_SIZE, DETECTOR_SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw_character(draw, main, x=110, y=70, scale=1.6, arms=1)
    draw_character(draw, other, x=515, y=380, scale=0.6, arms=2)
    return np.asarray(image)


def save(image: np.ndarray, path: Path) -> Path:
    """Write an RGB array as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
