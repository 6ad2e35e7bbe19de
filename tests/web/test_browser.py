"""Character Studio in a real browser: Debian's Chromium driven by Playwright against
`charstudio serve` + `charstudio worker` on a loopback port, generation on the fake ComfyUI.

Screenshots of every page go to tests/web/screenshots/ (git-ignored), at laptop and
tablet widths. scripts/setup-browser.sh (run by scripts/test.sh) installs Chromium.
"""

from __future__ import annotations

import base64
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from charstudio.config import load_settings
from charstudio.lab import LabPrompt, TuneSpec, write_html
from charstudio.services import build_services
from tests.backends.fake_comfyui import FakeComfyUI, free_port
from tests.backends.photo_outputs import PhotoScenario
from tests.lab.conftest import make_lab
from tests.web.conftest import PHOTOS, TOKEN, recorded_lora
from tests.web.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 768, "height": 1024}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: run scripts/setup-browser.sh"
)


@pytest.fixture(scope="module")
def comfy() -> Iterator[FakeComfyUI]:
    # Real photographs by seed (tests/backends/photo_outputs.py): QC and the badges see faces.
    server = FakeComfyUI(photos=PhotoScenario()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, comfy: FakeComfyUI) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("studio"), comfyui_url=comfy.url, token=TOKEN)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; any Content-Security-Policy violation or script error fails the test
    (the studio sends a self-only CSP, charstudio.web.headers)."""
    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    problems: list[str] = []
    opened.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert problems == []


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    page.set_viewport_size(TABLET)
    page.screenshot(path=SHOTS / f"{name}-tablet.png", full_page=True)
    page.set_viewport_size(LAPTOP)


def log_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.url}/studio")
    expect(page).to_have_url(f"{stack.url}/studio/login?next=/studio")
    page.get_by_label("Password (API token)").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Library", level=1)).to_be_visible()


def drop_images(page: Page, paths: list[Path]) -> None:
    """Drag files onto the page: a real ``drop`` event carrying a ``DataTransfer``."""
    files = [{"name": p.name, "b64": base64.b64encode(p.read_bytes()).decode()} for p in paths]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, { type: "image/jpeg" }));
            }
            return dt;
        }""",
        files,
    )
    page.dispatch_event("body", "drop", {"dataTransfer": transfer})


def test_studio_from_login_to_scored_generation(
    page: Page, stack: Stack, comfy: FakeComfyUI
) -> None:
    # 1. Log in; create a character by dropping images on the library.
    page.goto(f"{stack.url}/studio")
    shot(page, "login")
    log_in(page, stack)
    page.get_by_label("Name").fill("obama")
    drop_images(page, PHOTOS)
    expect(page.get_by_role("heading", name="obama", level=1)).to_be_visible()
    # 2. Face analysis: a job followed live, then the boxes.
    page.get_by_role("button", name="Analyse faces").click()
    expect(page.locator("[data-facebox]")).to_have_count(3, timeout=60_000)
    box = page.locator("[data-facebox]").first.bounding_box()  # placed by studio.js (CSP)
    assert box is not None and box["width"] > 10 and box["height"] > 10
    expect(page.get_by_text("IP-Adapter reference (auto)")).to_be_visible()
    # 3. The training set, and a caption edited.
    page.get_by_label("Resolution").select_option("512")
    page.get_by_label("Largest upscale").fill("2")
    page.get_by_role("button", name="Prepare training set").click()
    caption = page.get_by_label("Caption of obama_001.png")
    expect(caption).to_be_visible(timeout=60_000)
    caption.fill("obamacharacter, man in a dark suit, smiling")
    page.get_by_role("button", name="Save caption").first.click()
    expect(page.get_by_role("status")).to_have_text(
        "Caption of obama_001.png saved; it is used from the next time the set is prepared."
    )
    expect(page.get_by_label("Caption of obama_001.png")).to_have_value(
        "obamacharacter, man in a dark suit, smiling"
    )
    shot(page, "character")
    # 4. Generate: progress to 100 %, results with identity badges.
    page.get_by_role("link", name="Generate").click()
    page.get_by_label("Prompt", exact=True).fill("a red raincoat")
    page.get_by_label("Variation", exact=True).select_option("outfit")
    page.get_by_label("IP-Adapter strength").fill("0.9")
    outside = page.locator("#ipadapter_strength ~ [data-outside]")
    expect(outside).to_have_text("outside the recommended range")
    expect(outside).to_be_visible()
    page.get_by_label("IP-Adapter strength").fill("0.6")
    expect(outside).to_be_hidden()
    page.get_by_label("Seed").fill("7")
    page.get_by_label("Images").fill("2")
    page.get_by_role("button", name="Generate").click()
    follower = page.locator("[data-follow-job]")
    expect(follower.locator(".percent")).to_have_text("100 %", timeout=60_000)
    expect(follower.locator("[data-state]")).to_have_text("succeeded")
    expect(page.locator("[data-score-badge]")).to_have_count(2, timeout=60_000)
    expect(page.locator("[data-score-badge].pass")).to_have_count(2)  # the character, kept by QC
    expect(page.get_by_alt_text("Result 2, seed 8")).to_be_visible()
    shot(page, "generate")
    # 5. Cancel a slow generation from the jobs page.
    comfy.step_s = 0.2
    try:
        page.get_by_role("button", name="More like this").click()
        expect(follower.locator("[data-state]")).to_have_text("running", timeout=30_000)
        page.get_by_role("link", name="Jobs").click()
        page.get_by_role("button", name="Cancel job").first.click()
        expect(page.locator(".badge.state-cancelled").first).to_be_visible(timeout=30_000)
        shot(page, "jobs")
    finally:
        comfy.step_s = 0.0
    page.get_by_role("link", name="Library").click()
    expect(page.get_by_text("100 % of 2 recent")).to_be_visible()
    shot(page, "library")
    # 6. Log out: the studio asks for the password again.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Password (API token)")).to_be_visible()
    page.goto(f"{stack.url}/studio/jobs")
    expect(page).to_have_url(f"{stack.url}/studio/login?next=/studio/jobs")


def test_page_following_a_job_survives_a_server_restart(
    page: Page, stack: Stack, comfy: FakeComfyUI
) -> None:
    log_in(page, stack)
    page.goto(f"{stack.url}/studio/characters/obama/generate")
    page.get_by_label("Prompt", exact=True).fill("a blue scarf")
    page.get_by_label("Seed").fill("17")  # a photo of the character: QC keeps it
    page.get_by_label("Images").fill("1")
    comfy.step_s = 0.15
    try:
        page.get_by_role("button", name="Generate").click()
        follower = page.locator("[data-follow-job]")
        expect(follower.locator("[data-state]")).to_have_text("running", timeout=30_000)
        stack.stop_server(kill=True)
        expect(follower.locator("[data-connection]")).to_be_visible(timeout=15_000)
        expect(follower.locator("[data-state]")).to_have_text("running")
        stack.start_server()
        expect(follower.locator("[data-connection]")).to_be_hidden(timeout=30_000)
        expect(follower.locator("[data-state]")).to_have_text("succeeded", timeout=60_000)
        expect(follower.locator(".percent")).to_have_text("100 %")
        expect(page.get_by_alt_text("Result 1", exact=False)).to_be_visible()
    finally:
        comfy.step_s = 0.0
    # Last, as a promoted LoRA changes the method: a LoRA version as training records it
    # (training itself is tested in tests/training), its loss curve, promote.
    services = build_services(load_settings(home=stack.root / "data"))
    recorded_lora(services, 1, promoted=False)
    services.close()
    page.goto(f"{stack.url}/studio/characters/obama#loras")
    expect(
        page.get_by_role("img", name="obama v1: loss 0.2500 at step 1, 0.0812 at step 200")
    ).to_be_visible()
    page.get_by_role("button", name="Promote v1").click()
    expect(page.get_by_role("status")).to_have_text("LoRA v1 is now the one generation uses.")
    page.locator("#loras").screenshot(path=SHOTS / "character-loras.png")


def test_the_html_report_opens_and_shows_the_heatmap(page: Page, tmp_path: Path) -> None:
    """The lab's report page as a user opens it from disk: self-contained, heatmap drawn."""
    one = (LabPrompt(variation="outfit", text="a red coat"),)
    world = make_lab(tmp_path / "home")
    try:
        grid = TuneSpec(lora_strengths=(0.6, 0.7), ipadapter_strengths=(0.5, 0.6), seeds=1)
        world.lab.tune("obama", grid.model_copy(update={"backend": "photos", "prompts": one}))
        spec = TuneSpec(seeds=1, backend="photos", prompts=one)
        path = write_html(world.services.store, world.lab.report("obama", spec))
    finally:
        world.services.close()
    page.goto(path.as_uri())
    expect(page.get_by_role("heading", name="Consistency report: obama")).to_be_visible()
    heatmap = page.get_by_alt_text("Heatmap of face consistency over the tune grid")
    expect(heatmap).to_be_visible()
    assert heatmap.evaluate("image => image.naturalWidth") > 200
    expect(page.get_by_role("table").first).to_contain_text("lora_ipadapter")
    shot(page, "lab-report")


class _HostilePage(http.server.BaseHTTPRequestHandler):
    """What a ComfyUI custom node (or any other server on this host) may serve."""

    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hostile(stack: Stack) -> Iterator[str]:
    """A page on another port of 127.0.0.1 that POSTs to the studio's defaults form of
    ``victim`` twice: a ``fetch`` with the cookies, then an auto-submitted form."""
    action = f"{stack.url}/studio/characters/victim/defaults"
    _HostilePage.body = f"""<!doctype html><title>cute nodes</title>
<form id="f" method="post" action="{action}">
<input name="cfg" value="3"><input name="steps" value="9"></form>
<script>
fetch("{action}", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "application/x-www-form-urlencoded"}}, body: "cfg=2&steps=5"}})
  .finally(() => document.getElementById("f").submit());
</script>""".encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _HostilePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_on_another_port_cannot_change_a_character(
    page: Page, stack: Stack, hostile: str
) -> None:
    """Issue 15, finding 1: SameSite=Strict sends the session cookie from any port of the
    host, and a page on another port of 127.0.0.1 changed a character's cfg and steps. Now
    the Origin check and the CSRF token refuse both the form and the fetch, and the
    character keeps its defaults."""
    services = build_services(load_settings(home=stack.root / "data"))
    try:
        if "victim" not in [c.name for c in services.library.list_characters()]:
            services.library.create("victim", PHOTOS[:1])
        log_in(page, stack)
        # The studio's own form works in this session: cfg 6.5, steps 28.
        page.goto(f"{stack.url}/studio/characters/victim#defaults")
        page.get_by_label("CFG").fill("6.5")
        page.get_by_label("Steps").fill("28")
        page.get_by_role("button", name="Save defaults").click()
        expect(page.get_by_role("status")).to_have_text("Generation defaults saved.")
        params = services.library.profile("victim").params
        assert (params.cfg, params.steps) == (6.5, 28)
        # The hostile page, opened in the same browser (the user's session).
        answers: list[tuple[str, int]] = []
        page.on(
            "response",
            lambda r: (
                answers.append((r.request.resource_type, r.status))
                if r.request.method == "POST" and r.url.endswith("/victim/defaults")
                else None
            ),
        )
        page.goto(hostile)
        # Both requests were answered once the form's answer is shown (the form is sent
        # after the fetch settles); on the old code the attack landed (cfg 3, steps 9).
        expect(page).to_have_url(re.compile(re.escape(f"{stack.url}/studio/")))
        page.wait_for_load_state()
        params = services.library.profile("victim").params
        assert (params.cfg, params.steps) == (6.5, 28), answers  # unchanged
        assert sorted(answers) == [("document", 403), ("fetch", 403)], answers
        expect(page).to_have_url(f"{stack.url}/studio/characters/victim/defaults")
        expect(page.get_by_role("heading", name="Refused", level=1)).to_be_visible()
        expect(page.get_by_text("studio forms are accepted only from pages of")).to_be_visible()
    finally:
        services.close()
