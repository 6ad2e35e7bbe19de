"""Fixtures for the face engine tests: real photographs, the real dlib models (loaded once
per session) and a stand-in InsightFace model pack built as ONNX graphs at test time.

The stand-in pack has the real packs' file names and the same input/output names, shapes
and counts as SCRFD-10G (``det_10g.onnx``: one input, 9 outputs = scores, box distances
and 5 keypoints for strides 8/16/32, two anchors per cell) and ArcFace R50
(``w600k_r50.onnx``: ``input.1`` N x 3 x 112 x 112 -> ``683`` N x 512), so InsightFace's
own ``model_zoo`` routes and runs them. What they compute is simple and predictable:

- the detector "sees a face" wherever a 32x32 cell aligned to the 32-pixel grid is pure
  green (``MARKER``): a 128 px box centred on that cell, and 5 keypoints in a face layout;
- the recognizer averages the aligned 112 px crop into 8x8x3 cells, blanks the cells the
  marker falls in, centres the rest and projects it with a fixed random matrix: the same
  texture gives the same vector, different textures nearly orthogonal ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from charstudio.faces.base import FaceBackend
from charstudio.faces.registry import load_backend
from charstudio.library.images import load_rgb

DATA = Path(__file__).resolve().parent.parent / "data" / "faces"
PEOPLE = {
    "obama": ["obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg"],
    "biden": ["biden_2010.jpg", "biden_2013.jpg"],
    "collins": ["collins.jpg"],
    "hopper": ["hopper.jpg"],
}
NO_FACE = "coffee.jpg"
MARKER = (0, 255, 0)
CELL = 32
_DET_OUTPUTS = ["448", "471", "494", "451", "474", "497", "454", "477", "500"]  # det_10g.onnx


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def photo() -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def load(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load_rgb(DATA / name)
        return cache[name].copy()

    return load


@pytest.fixture(scope="session")
def dlib_backend() -> FaceBackend:
    return load_backend("dlib")


# --- stand-in InsightFace pack ---------------------------------------------------------


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(array, name)
    )


def build_scrfd_standin(path: Path) -> None:
    """Write a stand-in SCRFD detector with det_10g.onnx's interface to ``path``."""
    nodes = [
        _const("w_marker", np.array([-1.0, 1.0, -1.0], np.float32).reshape(1, 3, 1, 1)),
        helper.make_node("Conv", ["input.1", "w_marker"], ["marker"], name="conv_marker"),
        _const("shape_col", np.array([-1, 1], np.int64)),
        _const("zero", np.array(0.0, np.float32)),
        _const("two", np.array(2.0, np.float32)),
        _const("knee", np.array(2.5, np.float32)),
    ]
    # 128 px box centred on the green cell: distances (left, top, right, bottom) from the
    # anchor (the cell's top-left corner), in stride units.
    box = np.array([[1.5, 1.5, 2.5, 2.5]], np.float32)
    # Eyes, nose, mouth corners relative to the anchor, in pixels, then stride units.
    kps_px = [(-6, 0), (38, 0), (16, 22), (-2, 44), (34, 44)]
    kps = (np.array(kps_px, np.float32).reshape(1, 10)) / CELL
    nodes += [_const("box_dist", box), _const("kps_dist", kps)]
    scores, boxes, points = [], [], []
    for stride in (8, 16, 32):
        s = str(stride)
        nodes += [
            helper.make_node(
                "AveragePool",
                ["marker"],
                [f"pool{s}"],
                name=f"pool{s}",
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            ),
            helper.make_node("Reshape", [f"pool{s}", "shape_col"], [f"flat{s}"], name=f"flat{s}"),
            helper.make_node(
                "Concat", [f"flat{s}", f"flat{s}"], [f"pair{s}"], name=f"pair{s}", axis=1
            ),
            helper.make_node("Reshape", [f"pair{s}", "shape_col"], [f"col{s}"], name=f"col{s}"),
            helper.make_node("Mul", [f"col{s}", "zero"], [f"z{s}"], name=f"z{s}"),
        ]
        if stride == CELL:
            nodes += [
                helper.make_node("Sub", [f"col{s}", "knee"], [f"shift{s}"], name=f"shift{s}"),
                helper.make_node("Relu", [f"shift{s}"], [f"relu{s}"], name=f"relu{s}"),
                helper.make_node("Mul", [f"relu{s}", "two"], [f"score{s}"], name=f"score{s}"),
            ]
        else:
            nodes.append(helper.make_node("Identity", [f"z{s}"], [f"score{s}"], name=f"score{s}"))
        nodes += [
            helper.make_node("Add", [f"z{s}", "box_dist"], [f"box{s}"], name=f"box{s}"),
            helper.make_node("Add", [f"z{s}", "kps_dist"], [f"kps{s}"], name=f"kps{s}"),
        ]
        scores.append(f"score{s}")
        boxes.append(f"box{s}")
        points.append(f"kps{s}")
    for out_name, source in zip(_DET_OUTPUTS, scores + boxes + points, strict=True):
        nodes.append(helper.make_node("Identity", [source], [out_name], name=f"out_{out_name}"))
    widths = [1] * 3 + [4] * 3 + [10] * 3
    graph = helper.make_graph(
        nodes,
        "scrfd_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n{i}", width])
            for i, (name, width) in enumerate(zip(_DET_OUTPUTS, widths, strict=True))
        ],
    )
    _save(graph, path)


def build_arcface_standin(path: Path, *, seed: int = 0) -> None:
    """Write a stand-in ArcFace recognizer with w600k_r50.onnx's interface to ``path``."""
    projection = np.random.default_rng(seed).standard_normal((192, 512)).astype(np.float32)
    # Blank the pooled cells where the green detector marker lands after alignment, so two
    # faces share nothing but their texture.
    mask = np.ones((3, 8, 8), np.float32)
    mask[:, 2:7, 2:6] = 0.0
    nodes = [
        helper.make_node(
            "AveragePool",
            ["input.1"],
            ["pooled"],
            name="pool",
            kernel_shape=[14, 14],
            strides=[14, 14],
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
        _const("mask", mask.reshape(1, 192)),
        helper.make_node("Mul", ["flat", "mask"], ["masked"], name="blank_marker"),
        helper.make_node("ReduceMean", ["masked"], ["mean"], name="mean", axes=[1], keepdims=1),
        helper.make_node("Sub", ["masked", "mean"], ["centred"], name="centre"),
        _const("projection", projection),
        helper.make_node("MatMul", ["centred", "projection"], ["683"], name="project"),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])],
    )
    _save(graph, path)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="session")
def insightface_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ComfyUI-style ``models/insightface`` folder holding a stand-in buffalo_l pack."""
    root = tmp_path_factory.mktemp("comfyui") / "models" / "insightface"
    build_scrfd_standin(root / "models" / "buffalo_l" / "det_10g.onnx")
    build_arcface_standin(root / "models" / "buffalo_l" / "w600k_r50.onnx")
    return root


@pytest.fixture(scope="session")
def insightface_backend(insightface_root: Path) -> FaceBackend:
    return load_backend("insightface", model_root=insightface_root)


def pattern(kind: str, size: int = 192) -> np.ndarray:
    """A synthetic 'face' texture for the stand-in recognizer: stripes or a checkerboard."""
    ramp = (np.arange(size) // 16 % 2 * 160 + 40).astype(np.uint8)
    grid = {
        "horizontal": np.repeat(ramp[:, None], size, axis=1),
        "vertical": np.repeat(ramp[None, :], size, axis=0),
        "checker": (np.add.outer(np.arange(size) // 32, np.arange(size) // 32) % 2 * 200 + 30),
    }[kind].astype(np.uint8)
    return np.stack([grid, (grid * 0.8).astype(np.uint8), grid], axis=-1)


def marker_scene(faces: list[tuple[int, int, str]], *, size: int = 640) -> np.ndarray:
    """A black canvas with a stand-in face (192 px texture + green cell) at each cell given."""
    canvas = np.zeros((size, size, 3), np.uint8)
    for col, row, kind in faces:
        x, y = col * CELL, row * CELL
        canvas[y - 80 : y + 112, x - 80 : x + 112] = pattern(kind)
        canvas[y : y + CELL, x : x + CELL] = MARKER
    return canvas


# --- stand-in CCIP model folder (see ccip_standins.py) ------------------------------------


@pytest.fixture(scope="session")
def ccip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CCIP model folder as users keep it, with stand-in models."""
    from tests.faces.ccip_standins import build_ccip_folder

    return build_ccip_folder(tmp_path_factory.mktemp("models") / "ccip-standin")


@pytest.fixture(scope="session")
def ccip_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in YOLO character detector with its labels."""
    from tests.faces.ccip_standins import build_detector

    path = tmp_path_factory.mktemp("detector") / "character_detect.onnx"
    build_detector(path)
    return path


@pytest.fixture(scope="session")
def ccip_backend(ccip_folder: Path) -> FaceBackend:
    return load_backend("ccip", model_root=ccip_folder)
