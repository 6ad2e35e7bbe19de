"""The one exception tree: every class is in errors.py, drawn in its docstring, and
pydantic's ValidationError becomes InvalidParameter the same way everywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import charstudio
from charstudio import errors
from charstudio.errors import CharstudioError, InvalidParameter, invalid_parameter_from

SRC = Path(charstudio.__file__).parent
# They carry ComfyUI's error data and live beside its types (drawn with "(a)").
DEFINED_ELSEWHERE = {"WorkflowRejected", "ModelMissing"}


def _exception_classes_outside_errors() -> dict[str, str]:
    found = {}
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & (set(errors.__all__) | DEFINED_ELSEWHERE):
                    found[node.name] = str(path.relative_to(SRC))
    return found


def test_every_public_exception_is_defined_in_errors_py() -> None:
    # Seven classes (JobNotFound, JobFinished, JobCancelled, InvalidObjectInfo,
    # IncompatibleEmbeddings, NoUsableFace, NotEnoughImages) used to live in their packages,
    # missing from the drawn tree, and seven more were drawn but defined elsewhere.
    outside = _exception_classes_outside_errors()
    assert set(outside) == DEFINED_ELSEWHERE, outside


def test_the_drawn_tree_holds_every_class_under_its_real_parent() -> None:
    doc = errors.__doc__ or ""
    drawn: dict[str, str] = {"CharstudioError": ""}
    parents = ["CharstudioError"]
    for line in doc.splitlines():
        match = re.match(r"^    ((?:[│ ]   )*)[├└]── ([A-Z]\w+)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 4 + 1
        del parents[depth:]
        drawn[match.group(2)] = parents[depth - 1]
        parents.append(match.group(2))
    classes = {n: c for n in errors.__all__ if isinstance(c := getattr(errors, n), type)}
    from charstudio.workflows.types import ModelMissing, WorkflowRejected

    classes |= {"WorkflowRejected": WorkflowRejected, "ModelMissing": ModelMissing}
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        if cls is CharstudioError:
            continue
        assert cls.__bases__[0].__name__ == drawn[name], name


class _Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rank: int = Field(ge=1)


def test_invalid_parameter_from_names_every_key() -> None:
    with pytest.raises(ValidationError) as caught:
        _Sample.model_validate({"rank": 0, "rnak": 3})
    error = invalid_parameter_from(caught.value, "invalid sample")
    assert isinstance(error, InvalidParameter) and error.exit_code == 2
    assert str(error) == (
        "invalid sample: rank: Input should be greater than or equal to 1; "
        "rnak: unknown key; check the spelling against the documented keys"
    )
