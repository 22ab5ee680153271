"""The page at `/`, in a real browser: Debian's Chromium driven by Playwright (whose own browser download
cannot work here).

Screenshots go to test-artifacts/ (page-desktop.png, page-phone.png).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from http_servers import start_server
from PIL import Image

from serve.protocols.web_page import ORT_DIST, ORT_FILES

pytestmark = pytest.mark.slow  # a server and a browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BROWSER_ARGS = [  # no sandbox as root; no background traffic to hosts this machine cannot reach
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ASSETS = all((ORT_DIST / name).is_file() for name in ORT_FILES)


@pytest.fixture(scope="module")
def url(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.communicate(timeout=20)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no Chromium to drive: apt-get install chromium (.ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        yield browser
        browser.close()


class Visit:
    """One page load, recording console errors and every request's origin."""

    def __init__(self, browser, url: str, width: int = 1280, height: int = 900):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors, self.origins = [], set()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request", lambda r: self.origins.add(urlparse(r.url).netloc) if r.url.startswith("http") else None
        )
        self.page.goto(url)
        self.page.wait_for_function("document.getElementById('engine').textContent !== 'loading'", timeout=30_000)

    def probabilities(self) -> list[tuple[str, float]]:
        return self.page.eval_on_selector_all(
            "[data-testid=probabilities] > *", "items => items.map(i => [i.dataset.class, +i.dataset.probability])"
        )

    def draw_stroke(self) -> None:
        box = self.page.locator("canvas#pad").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        for i in range(1, 21):
            self.page.mouse.move(x, y + i * box["height"] * 0.035)
        self.page.mouse.up()

    def upload(self, path: Path) -> None:
        self.page.set_input_files("input[type=file]", str(path))
        self.page.wait_for_function(
            "[...document.querySelectorAll('[data-testid=probabilities] > *')].some(i => +i.dataset.probability > 0)"
        )


def _sample(digits_export: Path, index: int = 1) -> Path:
    return sorted((digits_export.parent / "samples").glob("*.png"))[index]


def test_drawing_updates_the_probabilities_and_they_sum_to_1(browser, url):
    visit = Visit(browser, url)
    assert [p for _, p in visit.probabilities()] == [0.0] * 10
    visit.draw_stroke()
    visit.page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=probabilities] > *')].some(i => +i.dataset.probability > 0)"
    )
    probabilities = visit.probabilities()
    assert [c for c, _ in probabilities] == [str(d) for d in range(10)]
    assert sum(p for _, p in probabilities) == pytest.approx(1.0, abs=1e-5)
    visit.page.click("#clear")
    assert visit.errors == []


def test_an_uploaded_sample_shows_its_class_on_top(browser, url, digits_export):
    visit = Visit(browser, url)
    sample = _sample(digits_export)
    with visit.page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/classify?top_k=10")) as sent:
        visit.upload(sample)
    assert sent.value.headers["content-type"] == "image/png"  # the file as it is, for the server to decode
    top = max(visit.probabilities(), key=lambda item: item[1])
    assert top[0] == sample.stem.split("-")[1]  # samples are named index-label.png
    assert visit.errors == []


@pytest.mark.skipif(not ASSETS, reason="onnxruntime-web is not installed: run `make web`")
def test_the_browser_engine_runs_the_model_and_agrees_with_the_server(browser, url, digits_export):
    visit = Visit(browser, url)
    assert visit.page.text_content("[data-testid=engine]") == "browser"
    visit.upload(_sample(digits_export, 2))
    visit.page.wait_for_function("document.getElementById('parity').dataset.maxDiff !== undefined")
    assert float(visit.page.get_attribute("[data-testid=parity]", "data-max-diff")) <= 1e-5
    assert visit.errors == []


def test_without_the_assets_the_server_answers(browser, url, digits_export):
    page = browser.new_page()
    listed = {"models": [{"name": "digits", "versions": [1]}], "browser_engine": False}
    page.route("**/models", lambda route: route.fulfill(json=listed))
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function("document.getElementById('engine').textContent !== 'loading'")
    assert page.text_content("[data-testid=engine]") == "server"
    page.set_input_files("input[type=file]", str(_sample(digits_export)))
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=probabilities] > *')].some(i => +i.dataset.probability > 0.5)"
    )
    assert errors == []


def test_the_model_card_and_the_templates(browser, url):
    visit = Visit(browser, url)
    card = visit.page.text_content("[data-testid=model-card]")
    assert "test accuracy" in card and "on 360 images" in card and "model.onnx vs Keras" in card
    assert visit.page.locator("[data-testid=templates] img").count() == 10
    widths = visit.page.eval_on_selector_all("[data-testid=templates] img", "images => images.map(i => i.naturalWidth)")
    assert widths == [8] * 10  # each template is the model's input size, drawn pixelated


def test_no_request_leaves_the_origin_and_the_console_stays_clean(browser, url, digits_export):
    visit = Visit(browser, url)
    visit.draw_stroke()
    visit.upload(_sample(digits_export))
    visit.page.wait_for_timeout(300)
    assert visit.origins == {urlparse(url).netloc}
    assert visit.errors == []


@pytest.mark.parametrize("name, width, height", [("desktop", 1280, 900), ("phone", 390, 844)])
def test_screenshots_and_no_sideways_scrolling(browser, url, digits_export, name, width, height):
    visit = Visit(browser, url, width, height)
    visit.upload(_sample(digits_export))
    assert visit.page.evaluate("document.documentElement.scrollWidth") <= width
    ARTIFACTS.mkdir(exist_ok=True)
    visit.page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"), full_page=True)
    with Image.open(ARTIFACTS / f"page-{name}.png") as shot:
        picture = np.asarray(shot.convert("RGB"))
    assert picture.shape[1] == width and picture.shape[0] >= height * 0.5  # the whole page, no wider than the screen
    colours = np.unique(picture.reshape(-1, 3), axis=0)
    assert len(colours) > 50  # drawn: text, the drawing area, the prediction bars; not a blank or error page


def test_the_page_routes(url, digits_export):
    with httpx.Client(base_url=url) as client:
        assert client.get("/").headers["content-type"].startswith("text/html")
        listed = {"models": [{"name": "digits", "versions": [1]}], "browser_engine": ASSETS}
        assert client.get("/models").json() == listed
        assert client.get("/models/digits/model.onnx").content == digits_export.read_bytes()
        assert client.get("/models/digits/versions/1/model.onnx").content == digits_export.read_bytes()
        assert client.get("/web/secrets.txt").status_code == 404
        assert (
            client.get("/web/ort/other.js").json()["error"].startswith("onnxruntime-web's 'other.js' is not installed")
        )
        parameters = client.get("/v2/models/digits").json()["parameters"]
        assert parameters["metrics"]["n_test"] == 360 and len(parameters["templates"]["png"]) == 10


@pytest.fixture(scope="module")
def repository_url(digits_export, no_tensorflow_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("repository")
    for name, versions in (("digits", (1, 2)), ("other", (3,))):
        for version in versions:
            (root / name / str(version)).mkdir(parents=True)
            shutil.copy(digits_export, root / name / str(version) / "model.onnx")
    process, port = start_server(root, no_tensorflow_env)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.communicate(timeout=20)


def test_the_page_picks_the_model_and_the_version(browser, repository_url, digits_export):
    visit = Visit(browser, repository_url)
    assert visit.page.eval_on_selector_all("[data-testid=model-select] option", "o => o.map(x => x.value)") == [
        "digits",
        "other",
    ]
    assert visit.page.input_value("[data-testid=version-select]") == "2"  # the newest by default
    visit.page.select_option("[data-testid=version-select]", "1")
    visit.page.wait_for_url("**/?model=digits&version=1")
    visit.page.wait_for_function("document.getElementById('engine').textContent !== 'loading'")
    with visit.page.expect_request("**/v1/models/digits/versions/1:predict") as asked:
        visit.page.evaluate("serverPredict(new Uint8Array(64))")
    assert asked.value.method == "POST"
    visit.page.select_option("[data-testid=model-select]", "other")
    visit.page.wait_for_url("**/?model=other")
    visit.page.wait_for_function("document.getElementById('engine').textContent !== 'loading'")
    assert visit.page.input_value("[data-testid=version-select]") == "3"
    assert visit.errors == []
