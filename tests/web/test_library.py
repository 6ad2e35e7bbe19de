"""The library page: cards, and creating a character by upload (the drop zone's form)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.services import Services
from tests.web.conftest import PHOTOS, files, job_in


def test_empty_library_offers_the_drop_zone(browser: TestClient) -> None:
    page = browser.get("/studio")
    assert page.status_code == 200
    assert "No characters yet." in page.text
    assert '<label for="new-files">Reference images</label>' in page.text
    assert 'name="files" type="file" accept="image/*" multiple' in page.text


def test_created_character_gets_a_card(obama: TestClient, queue: JobQueue) -> None:
    page = obama.get("/studio").text
    assert "<h2>obama</h2>" in page
    assert '<span class="badge method-img2img"' in page
    assert "<dt>References</dt><dd>3</dd>" in page
    assert "<dt>LoRA</dt><dd>none</dd>" in page
    assert "not scored yet" in page
    assert 'alt="Reference face of obama"' in page
    # After face analysis the card shows the exported reference face crop.
    queue.run(job_in(obama.post("/studio/characters/obama/faces").headers["location"]))
    page = obama.get("/studio").text
    assert "/studio/files/character_data/embeddings/obama_reference_face.png" in page
    assert '<span class="badge method-ipadapter_only"' in page


def test_upload_that_is_not_an_image_shows_the_message_and_stores_nothing(
    browser: TestClient, web_services: Services
) -> None:
    upload = [*files(PHOTOS[0]), ("files", ("notes.jpg", b"just some text", "image/jpeg"))]
    response = browser.post("/studio/characters", data={"name": "yuki"}, files=upload)
    assert response.status_code == 400
    assert (
        '<p class="error" role="alert" id="error-message">notes.jpg: not an image file (or a '
        "format Pillow cannot read); use PNG, JPEG or WEBP; nothing was imported — fix or remove "
        "the file, or pass --skip-bad to import the others</p>"
    ) in response.text
    assert web_services.library.list_characters() == []
    assert not web_services.store.references_dir("yuki").exists() or not any(
        web_services.store.references_dir("yuki").iterdir()
    )
    assert not any((web_services.settings.home / "tmp").iterdir())


def test_taken_name_and_missing_files(obama: TestClient) -> None:
    taken = obama.post("/studio/characters", data={"name": "Obama"}, files=files(PHOTOS[0]))
    assert taken.status_code == 409
    assert (
        "a character named &#39;Obama&#39; already exists (names ignore case); choose another "
        "name, or add images with `charstudio character import Obama PATH`"
    ) in taken.text
    empty = obama.post("/studio/characters", data={"name": "yuki"}, files={"other": ("", b"")})
    assert empty.status_code == 400
    assert "no files in the form field &#39;files&#39;; attach images to it" in empty.text
