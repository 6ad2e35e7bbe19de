"""Upload fuzzing: whatever a client sends as files, names and fields, never a 500.

hypothesis draws file contents (random bytes, truncated or valid small PNGs and JPEGs),
client file names (path traversal, NUL and control characters, unicode, 300 characters)
and form fields; every answer must be a 2xx or a 4xx with a JSON ``detail``, and every
stored file must sit in the character's reference folder under its content hash.
"""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from charstudio.services import Services


def _image(data: tuple[int, int, int, str, int]) -> bytes:
    width, height, shade, fmt, cut = data
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, shade // 2)).save(buffer, format=fmt)
    raw = buffer.getvalue()
    return raw[: len(raw) - cut] if cut else raw  # cut > 0: a truncated image


contents = st.one_of(
    st.binary(max_size=2048),
    st.tuples(
        st.integers(1, 300),
        st.integers(1, 300),
        st.integers(0, 255),
        st.sampled_from(["PNG", "JPEG", "BMP", "GIF"]),
        st.sampled_from([0, 0, 0, 10]),
    ).map(_image),
)
names = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        ["../../etc/passwd", "..\\..\\boot.ini", "/abs/path.png", "a\x00b.png", ".hidden", "", " "]
    ),
)
uploads = st.lists(st.tuples(names, contents), min_size=0, max_size=4)
fields = st.dictionaries(st.sampled_from(["x", "name", "files"]), st.text(max_size=50), max_size=2)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(uploads=uploads, form=fields)
def test_reference_uploads_never_500(
    obama: TestClient,
    api_services: Services,
    uploads: list[tuple[str, bytes]],
    form: dict[str, str],
) -> None:
    response = obama.post(
        "/api/v1/characters/obama/references",
        data=form,
        files=[("files", (name, data, "application/octet-stream")) for name, data in uploads],
    )
    assert response.status_code < 500, response.text
    event(f"status {response.status_code}")
    if response.status_code >= 400:
        assert response.json()["detail"]
    folder = api_services.store.references_dir("obama")
    for path in folder.iterdir():
        assert path.parent == folder and len(path.stem) == 64, path
    leftovers = list((api_services.store.home / "tmp").glob("upload-*"))
    assert leftovers == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=names, uploads=uploads)
def test_character_creation_never_500(
    client: TestClient, api_services: Services, name: str, uploads: list[tuple[str, bytes]]
) -> None:
    response = client.post(
        "/api/v1/characters",
        data={"name": name},
        files=[("files", (n, data, "image/png")) for n, data in uploads],
    )
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        stored = response.json()["added"][0]["stored_path"]  # relative to the data root
        assert (api_services.store.home / stored).is_file()
        client.delete(f"/api/v1/characters/{response.json()['character']}", params={"purge": True})
