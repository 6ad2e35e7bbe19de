"""House rules checked by the build: the pipeline's import direction and public surfaces."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import charstudio

SRC = Path(charstudio.__file__).parent

# Pipeline order (docs/ARCHITECTURE.md, "The pipeline"): a package may import only itself
# and packages before it.
LAYERS = [
    {"errors", "config"},
    {"library"},
    {"faces"},
    {"dataset"},
    {"training"},
    {"workflows"},
    {"backends"},
    {"qc"},
    {"services", "demo"},
    {"jobs"},
    {"api", "web", "cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "charstudio" and len(parts) > 1 else None


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_every_top_level_module_has_a_layer() -> None:
    tops = {
        p.stem if p.is_file() else p.name
        for p in SRC.iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"
    }
    assert tops - RANK.keys() == set()


def test_imports_point_back_up_the_pipeline() -> None:
    wrong = []
    for path in SRC.rglob("*.py"):
        own = _top("charstudio." + ".".join(path.relative_to(SRC).with_suffix("").parts))
        if own is None or own not in RANK:
            continue
        for module in _imports(path):
            other = _top(module)
            if other and other in RANK and RANK[other] > RANK[own]:
                wrong.append(f"{path.relative_to(SRC)} imports {module}")
    assert wrong == []


def _packages() -> list[str]:
    return ["charstudio"] + [
        m.name
        for m in pkgutil.walk_packages([str(SRC)], prefix="charstudio.")
        if m.ispkg and "migrations" not in m.name
    ]


@pytest.mark.parametrize("package", _packages())
def test_public_surface_is_declared(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package}/__init__.py must declare __all__"
    assert len(set(exported)) == len(exported), f"{package}.__all__ repeats a name"
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name!r}"


def test_no_module_is_too_long() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if "versions" not in p.parts and (n := len(p.read_text().splitlines())) > 420
    }
    assert long == {}
