"""Schema fuzz of the whole API: every operation of ``/openapi.json``, with and without the
token, never answers 5xx or shows a traceback (but for the 503 of a face backend that is not
set up on this server, a refusal with its reason, checked by its error type).

The strategies are built from the schema itself (no schemathesis): path and query
parameters, JSON bodies (``$ref``, ``anyOf``, enums, bounds, plus values outside them and
JSON of the wrong shape), multipart forms (fields and files: random bytes, a valid 64 px
PNG, a PNG with HTML after IEND) and url-encoded forms. Each operation runs in its own data
root holding one character (``obama``), so names are sometimes real and the routes go past
their 404s. Bounded: ``EXAMPLES`` examples per operation, derandomised so the default suite
is repeatable.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from charstudio.config import load_settings
from charstudio.jobs import JobQueue
from charstudio.server import create_app
from charstudio.services import Services, build_services
from tests.api.conftest import PHOTOS, TOKEN, files

EXAMPLES = 40
Schema = dict[str, Any]


def _openapi() -> Schema:
    """The schema, from an app over an empty temporary root (nothing is written there)."""
    with tempfile.TemporaryDirectory() as home:
        built = build_services(load_settings(home=Path(home) / "data", api_token=TOKEN))
        return create_app(built, queue=cast(JobQueue, object())).openapi()


SCHEMA = _openapi()
OPERATIONS = [
    (method.upper(), path)
    for path, ops in SCHEMA["paths"].items()
    for method in ops
    if method in {"get", "post", "put", "patch", "delete"}
]

ODD_TEXT = st.sampled_from(
    ["", " ", "obama", "OBAMA", "../../etc/passwd", "a\x00b", "x" * 300, "NaN", "-1", "%2e%2e", "é"]
)
ODD_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _png(shade: int, html: bool) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (shade, 255 - shade, shade // 2)).save(buffer, format="PNG")
    return buffer.getvalue() + (b"<html><script>x()</script></html>" if html else b"")


FILE_CONTENTS = st.one_of(
    st.binary(max_size=256),
    st.builds(_png, st.integers(0, 255), st.booleans()),
)


def _resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _value(schema: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that fit ``schema``, often mixed with values that do not."""
    schema = _resolve(schema)
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([_value(s, depth) for s in schema.get("anyOf", schema.get("oneOf"))])
    if "allOf" in schema:
        return _value(schema["allOf"][0], depth)
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), ODD_TEXT)
    kind = schema.get("type")
    if kind == "string":
        fitting = st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40)
        )
        return st.one_of(fitting, ODD_TEXT)
    if kind in {"integer", "number"}:
        low, high = schema.get("minimum"), schema.get("maximum")
        fitting: st.SearchStrategy[Any] = (
            st.integers(
                min_value=None if low is None else int(low),
                max_value=None if high is None else min(int(high), 2**64 - 1),
            )
            if kind == "integer"
            else st.floats(min_value=low, max_value=high, allow_nan=False)
        )
        return st.one_of(fitting, ODD_NUMBERS)
    if kind == "boolean":
        return st.one_of(st.booleans(), ODD_TEXT)
    if kind == "null":
        return st.none()
    if kind == "array":
        if depth > 2:
            return st.just([])
        return st.lists(_value(schema.get("items", {}), depth + 1), max_size=3)
    if kind == "object" or "properties" in schema:
        if depth > 2:
            return st.just({})
        props = {k: _value(v, depth + 1) for k, v in schema.get("properties", {}).items()}
        required = {k: v for k, v in props.items() if k in schema.get("required", [])}
        optional = {k: v for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    return st.one_of(st.none(), ODD_TEXT, ODD_NUMBERS)


JUNK_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), ODD_NUMBERS, ODD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ODD_TEXT, inner)),
    max_leaves=6,
)


def _params(operation: Schema, where: str) -> st.SearchStrategy[dict[str, Any]]:
    found = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == where}
    if where == "path":
        return st.fixed_dictionaries({k: _value(p["schema"]) for k, p in found.items()})
    return st.fixed_dictionaries({}, optional={k: _value(p["schema"]) for k, p in found.items()})


def _json_body(value: Any) -> dict[str, Any]:
    """``value`` as a JSON body, ``NaN`` and ``Infinity`` included (the client's own encoder
    refuses them, a hostile client does not)."""
    return {
        "content": json.dumps(value).encode(),
        "headers": {"Content-Type": "application/json"},
    }


def _form_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _request(method: str, path: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``TestClient.request`` for one operation."""
    operation = SCHEMA["paths"][path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    body: st.SearchStrategy[dict[str, Any]] = st.just({})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        body = st.one_of(
            _value(schema).map(_json_body),
            JUNK_JSON.map(_json_body),
            st.binary(max_size=64).map(lambda b: {"content": b}),
        )
    elif "multipart/form-data" in content:
        props = _resolve(content["multipart/form-data"]["schema"]).get("properties", {})
        fields = {k: _value(v).map(_form_text) for k, v in props.items() if k != "files"}
        uploads = st.lists(st.tuples(ODD_TEXT | st.just("a.png"), FILE_CONTENTS), max_size=3)
        body = st.builds(
            lambda data, sent: {
                "data": data,
                "files": [("files", (name, raw, "image/png")) for name, raw in sent]
                or [("x", ("x.bin", b"", "application/octet-stream"))],
            },
            st.fixed_dictionaries({}, optional=fields),
            uploads,
        )
    elif "application/x-www-form-urlencoded" in content:
        props = _resolve(content["application/x-www-form-urlencoded"]["schema"])["properties"]
        body = st.fixed_dictionaries(
            {}, optional={k: _value(v).map(_form_text) for k, v in props.items()}
        ).map(lambda data: {"data": data})
    auth = st.sampled_from(
        [{"Authorization": f"Bearer {TOKEN}"}] * 3 + [{}, {"Authorization": "Bearer wrong"}]
    )
    return st.builds(
        lambda path_params, query, sent, headers: {
            "method": method,
            "url": path.format(**{k: quote(str(v), safe="") for k, v in path_params.items()}),
            "params": query,
            **sent,
            "headers": {**sent.get("headers", {}), **headers},
        },
        _params(operation, "path"),
        _params(operation, "query"),
        body,
        auth,
    )


@pytest.fixture
def fuzz_client(api_services: Services, queue: JobQueue) -> Iterator[TestClient]:
    """The app with one character, answering a server error as a 500 instead of raising."""
    api_services.settings = api_services.settings.model_copy(
        update={"api_token": TOKEN, "api_max_upload_bytes": 1_000_000, "api_max_files": 5}
    )
    app = create_app(api_services, queue=queue)
    with TestClient(app, raise_server_exceptions=False) as client:
        created = client.post(
            "/api/v1/characters",
            data={"name": "obama"},
            files=files(*PHOTOS),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert created.status_code == 201, created.text
        yield client


def _error_type(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("type") if isinstance(body, dict) else None


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 25
    assert ("POST", "/api/v1/characters") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error(fuzz_client: TestClient, method: str, path: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=_request(method, path))
    def check(request: dict[str, Any]) -> None:
        response = fuzz_client.request(**request)
        assert "Traceback" not in response.text, (request, response.text)
        if response.status_code < 500:
            return
        # One 5xx is the server's honest state, not a fault: a face backend that is not set
        # up here (no InsightFace pack, no CCIP folder) is refused before anything is queued.
        assert (response.status_code, _error_type(response)) == (503, "BackendUnavailable"), (
            request,
            response.status_code,
            response.text,
        )

    check()


def test_a_body_that_is_not_utf8_is_a_422(fuzz_client: TestClient) -> None:
    """Found by the fuzz: a raw body without a JSON content type, not UTF-8, gave 500 (the
    422 body echoed the bytes and could not be encoded)."""
    for raw in (b"\x80", b"\xff\xfe{}"):
        response = fuzz_client.patch(
            "/api/v1/characters/obama",
            content=raw,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body"]
