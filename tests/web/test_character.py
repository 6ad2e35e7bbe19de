"""The character page: face boxes, the IP-Adapter reference, the training set and its
captions, LoRA versions, generation defaults."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.services import Services
from tests.web.conftest import job_in, recorded_lora


def message(page: str) -> str:
    found = re.search(r'id="error-message">(.*?)</p>', page, re.S)
    assert found, page
    return found.group(1)


def test_before_analysis_every_reference_says_so(obama: TestClient) -> None:
    page = obama.get("/studio/characters/obama").text
    assert page.count("not analysed yet") == 3
    assert "data-facebox" not in page
    assert 'alt="Reference obama_2009.jpg"' in page
    assert "No training set yet: prepare one from the references." in page
    assert "No LoRA yet." in page


def test_face_boxes_are_drawn_where_the_analysis_found_them(
    analysed: TestClient, web_services: Services
) -> None:
    page = analysed.get("/studio/characters/obama").text
    refs = {r.original_name: r for r in web_services.library.show("obama").references}
    assert page.count("data-facebox") == 3
    ref = refs["obama_2009.jpg"]
    x0, y0, x1, y1 = ref.face_details["box"]
    assert (
        f"left:{100 * x0 / ref.width:.2f}%;top:{100 * y0 / ref.height:.2f}%;"
        f"width:{100 * (x1 - x0) / ref.width:.2f}%;height:{100 * (y1 - y0) / ref.height:.2f}%"
    ) in page
    assert page.count(">one clear face</span>") == 3
    chosen = [r for r in refs.values() if r.ipadapter_reference == "auto"]
    assert len(chosen) == 1
    assert "IP-Adapter reference (auto)" in page


def test_clicking_another_reference_makes_it_the_ip_adapter_reference(
    analysed: TestClient, web_services: Services
) -> None:
    other = next(
        r for r in web_services.library.show("obama").references if not r.ipadapter_reference
    )
    response = analysed.post("/studio/characters/obama/reference", data={"image": other.sha256})
    assert response.status_code == 303
    page = analysed.get(response.headers["location"]).text
    assert f"{other.original_name} is now the IP-Adapter reference." in page
    assert "IP-Adapter reference (user)" in page
    assert web_services.faces.reference("obama").sha256 == other.sha256


def test_a_reference_that_is_not_analysed_cannot_be_chosen(obama: TestClient) -> None:
    response = obama.post("/studio/characters/obama/reference", data={"image": "obama_2010.jpg"})
    assert response.status_code == 400
    assert message(response.text) == (
        "obama_2010.jpg cannot be the reference: face status not analysed; run `charstudio "
        "faces extract obama` or pick an image with one clear face of the character"
    )


def test_prepare_shows_a_contact_sheet_with_editable_captions(
    obama: TestClient, queue: JobQueue, web_services: Services
) -> None:
    response = obama.post(
        "/studio/characters/obama/dataset", data={"resolution": "512", "max_upscale": "2"}
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("#dataset")
    follower = obama.get(response.headers["location"]).text
    assert f'data-follow-job="{job_in(response.headers["location"])}"' in follower
    assert queue.run(job_in(response.headers["location"])).state == "succeeded"
    page = obama.get("/studio/characters/obama").text
    assert "Version 1: 3 images at 512 px." in page
    assert 'alt="Training image obama_001.png (from obama_2009.jpg)"' in page
    assert "/studio/files/character_data/training_sets/obama/images/obama_001.png" in page
    assert '<label for="caption-1">Caption of obama_001.png</label>' in page

    edit = obama.post(
        "/studio/characters/obama/captions/obama_001.png",
        data={"text": "obamacharacter, man in a dark suit, smiling"},
    )
    assert edit.status_code == 303
    page = obama.get(edit.headers["location"]).text
    assert (
        "Caption of obama_001.png saved; it is used from the next time the set is prepared."
    ) in page
    assert ">obamacharacter, man in a dark suit, smiling</textarea>" in page
    assert "edited, applied at the next prepare" in page


def test_a_caption_without_the_trigger_word_is_refused(obama: TestClient, queue: JobQueue) -> None:
    prepared = obama.post(
        "/studio/characters/obama/dataset", data={"resolution": "512", "max_upscale": "2"}
    )
    queue.run(job_in(prepared.headers["location"]))
    response = obama.post(
        "/studio/characters/obama/captions/obama_001.png", data={"text": "a man in a suit"}
    )
    assert response.status_code == 400
    assert message(response.text) == (
        "caption must start with the trigger word &#39;obamacharacter&#39; (e.g. "
        "&#34;obamacharacter, a man in a suit&#34;)"
    )


def test_prepare_settings_are_checked(obama: TestClient) -> None:
    response = obama.post("/studio/characters/obama/dataset", data={"resolution": "700"})
    assert response.status_code == 400
    assert message(response.text) == (
        "invalid dataset setting: resolution: resolution 700 is not a multiple of 64; use e.g. "
        "640 or 704"
    )


def test_generation_defaults_save_and_show_field_errors(
    analysed: TestClient, web_services: Services
) -> None:
    saved = analysed.post(
        "/studio/characters/obama/defaults", data={"ipadapter_strength": "0.65", "steps": "20"}
    )
    assert saved.status_code == 303
    assert "Generation defaults saved." in analysed.get(saved.headers["location"]).text
    profile = web_services.library.profile("obama")
    assert (profile.params.ipadapter_strength, profile.params.steps) == (0.65, 20)

    bad = analysed.post(
        "/studio/characters/obama/defaults", data={"ipadapter_strength": "2.5", "cfg": "lots"}
    )
    assert bad.status_code == 422
    assert 'id="d-ipadapter_strength-error">IP-Adapter strength must be at most 2.0' in bad.text
    assert 'id="d-cfg-error">CFG must be a number' in bad.text
    assert 'value="2.5"' in bad.text
    assert web_services.library.profile("obama").params.ipadapter_strength == 0.65

    reset = analysed.post("/studio/characters/obama/defaults", data={})
    assert reset.status_code == 303
    assert web_services.library.profile("obama").params.ipadapter_strength == 0.8


def test_character_weight_in_the_defaults_form(
    analysed: TestClient, web_services: Services
) -> None:
    page = analysed.get("/studio/characters/obama").text
    assert '<label for="d-character_weight">Character weight</label>' in page
    assert "identity vs outfit, 0 to 1: 0 only the face" in page
    saved = analysed.post("/studio/characters/obama/defaults", data={"character_weight": "0.2"})
    assert saved.status_code == 303
    assert web_services.library.profile("obama").params.character_weight == 0.2
    for value in ("1.5", "nan"):
        bad = analysed.post("/studio/characters/obama/defaults", data={"character_weight": value})
        assert bad.status_code == 422, value
        assert (
            'id="d-character_weight-error">Character weight must be a number from 0 to 1, '
            f"got {value}: 0 carries only the face"
        ) in bad.text
    assert web_services.library.profile("obama").params.character_weight == 0.2
    analysed.post("/studio/characters/obama/defaults", data={})
    assert web_services.library.profile("obama").params.character_weight == 0.5


def test_training_is_queued_and_unknown_versions_are_named(
    obama: TestClient, queue: JobQueue
) -> None:
    response = obama.post("/studio/characters/obama/train")
    assert response.status_code == 303
    assert queue.store.get(job_in(response.headers["location"])).kind == "train"
    missing = obama.post("/studio/characters/obama/loras/v3/promote")
    assert missing.status_code == 404
    assert message(missing.text) == "obama has no LoRA v3; see `charstudio lora list obama`"


def test_unknown_character_is_a_404_page(browser: TestClient) -> None:
    response = browser.get("/studio/characters/nobody")
    assert response.status_code == 404
    assert message(response.text) == (
        "no character named &#39;nobody&#39;; see `charstudio character list` or create it "
        "with `charstudio character add nobody --images PATH`"
    )


def test_lora_versions_show_loss_curves_samples_and_promote(
    obama: TestClient, web_services: Services
) -> None:
    recorded_lora(web_services, 1, promoted=True)
    recorded_lora(web_services, 2, promoted=False)
    page = obama.get("/studio/characters/obama").text
    assert page.count('<svg class="loss"') == 2
    assert 'aria-label="obama v2: loss 0.2500 at step 1, 0.0812 at step 200"' in page
    assert "200 steps, final loss 0.0812" in page
    assert "Samples at step 200" in page
    assert 'alt="v2 sample 1 at step 200"' in page
    assert page.index("<h3>v2") < page.index("<h3>v1")  # newest first
    assert "Promote v2" in page and "Promote v1" not in page

    promoted = obama.post("/studio/characters/obama/loras/v2/promote")
    assert promoted.status_code == 303
    page = obama.get(promoted.headers["location"]).text
    assert "LoRA v2 is now the one generation uses." in page
    assert "Promote v1" in page and "Promote v2" not in page
    assert "<dt>LoRA</dt><dd>v2</dd>" in obama.get("/studio").text


def test_more_references_are_added_and_duplicates_reported(obama: TestClient) -> None:
    from tests.web.conftest import PHOTOS, files

    response = obama.post("/studio/characters/obama/references", files=files(PHOTOS[0]))
    assert response.status_code == 303
    assert response.headers["location"].endswith("#references")
    page = obama.get(response.headers["location"]).text
    assert "Added 0 image(s), 1 duplicate(s) skipped." in page
