"""The explorer's page in headless Chromium on a tiny trained run: the map, hover,
click, a slider, the samplers, the interpolation strip, and a clean console."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from conftest import copy_run, needs_chromium
from PIL import Image

import zspace
from zspace.data.prepare import prepare
from zspace.generation import samplers
from zspace.latents.store import load_latents

pytestmark = needs_chromium

PIXELS = """
const img = arguments[0];
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d');
g.drawImage(img, 0, 0);
return c.toDataURL('image/png');
"""


@pytest.fixture(scope="module")
def run(tiny_runs, tmp_path_factory):
    """A copy of the shared tiny VAE with a fitted GMM."""
    folder = tmp_path_factory.mktemp("explore-page") / "vae"
    r = zspace.load_run(copy_run(tiny_runs["vae"], folder))
    samplers.Fitted("gmm", [1, 2], seed=r.config.seed).fitted(
        r.path / "samplers", load_latents(r).z
    )
    return r


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    from conftest import headless_chromium

    profile = tmp_path_factory.mktemp("profile")
    with zspace.explore(run) as handle:
        driver = headless_chromium(profile, "1600,1200")
        try:
            driver.get(handle.url)
            wait(driver, "document.getElementById('status').textContent === 'ready'")
            wait(driver, "window.zspace.stats.decodesDone >= 1 && window.zspace.idle()")
            yield driver
        finally:
            driver.quit()


def wait(driver, condition: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(f"return {condition}")
    )


def no_console_errors(driver):
    severe = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert severe == []
    assert "error" not in driver.find_element("id", "status").get_attribute("class")


def pixels(driver, element_id: str) -> np.ndarray:
    img = driver.find_element("id", element_id)
    url = driver.execute_script(PIXELS, img)
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("L"))


def mouse_to(driver, row: int, click: bool = False):
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "map")
    x, y = driver.execute_script(f"return window.zspace.screenOf({row})")
    w, h = canvas.size["width"], canvas.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(canvas, 0, 0)  # re-enter the map
    chain.move_to_element_with_offset(canvas, round(x - w / 2), round(y - h / 2))
    (chain.click() if click else chain).perform()


def isolated_rows(driver, count: int) -> list[int]:
    """Map rows with no other point within 8 px on screen (so the mouse hits exactly them)."""
    return driver.execute_script(
        """
        const rows = window.zspace.state.map.rows, n = rows.length, out = [];
        const pos = rows.map(r => window.zspace.screenOf(r));
        for (let i = 0; i < n && out.length < arguments[0]; i += 7) {
          const [x, y] = pos[i];
          if (x < 20 || y < 20 || x > 580 || y > 580) continue;
          let alone = true;
          for (let j = 0; j < n && alone; j++)
            if (j !== i && Math.hypot(pos[j][0] - x, pos[j][1] - y) < 8) alone = false;
          if (alone) out.push(rows[i]);
        }
        return out;
        """,
        count,
    )


def test_the_map_renders_all_points_with_a_legend(page, run):
    lat = load_latents(run)
    stats = page.execute_script("return window.zspace.stats")
    assert stats["drawMs"], "the map was never drawn"
    coloured = page.execute_script(
        """
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
          if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;
        return n;
        """
    )
    # 2x2 px per point, overlapping: well over one pixel per point is coloured
    assert coloured > len(lat)
    assert page.execute_script("return window.zspace.state.map.rows.length") == len(lat)
    legend = page.find_element("id", "legend").text.split()
    assert legend == [str(k) for k in range(10)]
    no_console_errors(page)


def test_hover_shows_the_points_thumbnail(page, run):
    lat = load_latents(run)
    data, _ = prepare(run.config, run.path)
    row = isolated_rows(page, 1)[0]
    mouse_to(page, row)
    wait(page, "!document.getElementById('tooltip').hidden")
    wait(page, "document.getElementById('tooltip-img').naturalWidth === 16")
    assert page.find_element("id", "tooltip-text").text.startswith(f"#{row} · ")
    assert np.array_equal(pixels(page, "tooltip-img"), data.images[lat.index[row]][..., 0])
    no_console_errors(page)


def test_click_shows_original_reconstruction_and_radius(page, run):
    lat = load_latents(run)
    data, _ = prepare(run.config, run.path)
    row = isolated_rows(page, 1)[0]
    before = page.execute_script("return window.zspace.stats.points")
    mouse_to(page, row, click=True)
    wait(page, f"window.zspace.stats.points === {before + 1} && window.zspace.idle()")
    assert page.find_element("id", "point-title").text.startswith(f"#{row}")
    assert np.array_equal(pixels(page, "point-original"), data.images[lat.index[row]][..., 0])
    recon = (run.decode(lat.mu[row : row + 1]).numpy()[0, 0] * 255).round()
    assert np.abs(pixels(page, "point-recon").astype(float) - recon).max() <= 1
    facts = page.find_element("id", "point-facts").text
    radius = float(np.linalg.norm(lat.z[row].astype(np.float64)))
    assert f"radius |z|\n{radius:.4g}" in facts or f"radius |z| {radius:.4g}" in facts
    # the latent panel now decodes this point: it is its own nearest training point
    near, _, dist = page.find_element("id", "z-nearest").text.partition(" at distance ")
    assert near == f"#{row}" and float(dist) < 1e-4
    no_console_errors(page)


def test_moving_a_slider_changes_the_decoded_image(page):
    before = pixels(page, "decoded")
    done = page.execute_script("return window.zspace.stats.decodesDone")
    page.execute_script(
        "const s = document.getElementById('pc1'); s.value = 2.5;"
        "s.dispatchEvent(new Event('input'))"
    )
    wait(page, f"window.zspace.stats.decodesDone > {done} && window.zspace.idle()")
    after = pixels(page, "decoded")
    assert after.shape == before.shape == (16, 16)
    assert np.abs(after.astype(int) - before).sum() > 0
    assert page.find_element("id", "pc1").get_attribute("value") == "2.5"
    no_console_errors(page)


def test_a_slider_drag_is_coalesced_and_the_last_position_wins(page):
    sent = page.execute_script("return window.zspace.stats.decodesSent")
    page.execute_script(
        """
        const s = document.getElementById('pc2');
        for (let k = 0; k <= 120; k++) {
          s.value = -3 + k * 0.05;
          s.dispatchEvent(new Event('input'));
        }
        """
    )
    wait(page, "window.zspace.idle()")
    stats = page.execute_script("return window.zspace.stats")
    assert stats["decodesSent"] - sent <= 3  # 121 input events, one or two decodes
    last = page.execute_script("return Array.from(window.zspace.stats.lastZ)")
    assert np.allclose(last, page.execute_script("return window.zspace.currentZ()"))
    no_console_errors(page)


def test_sampler_buttons_show_images(page):
    assert page.find_element("id", "sample-gmm").is_enabled()
    for name in ("normal", "uniform", "gauss", "gmm"):
        done = page.execute_script("return window.zspace.stats.samples")
        page.find_element("id", f"sample-{name}").click()
        wait(page, f"window.zspace.stats.samples === {done + 1}")
        sizes = page.execute_script(
            "return Array.from(document.querySelectorAll('#samples img'))"
            ".map(i => [i.complete, i.naturalWidth])"
        )
        assert len(sizes) == 16 and all(c and w == 16 for c, w in sizes), (name, sizes)
        assert page.find_element("id", "sample-caption").text.startswith(name)
    # a sampled image moves the latent point there
    done = page.execute_script("return window.zspace.stats.decodesDone")
    page.find_element("css selector", "#samples img").click()
    wait(page, f"window.zspace.stats.decodesDone > {done} && window.zspace.idle()")
    no_console_errors(page)


def test_two_clicks_give_the_interpolation_strips(page):
    a, b = isolated_rows(page, 2)
    paths = page.execute_script("return window.zspace.stats.paths")
    for row in (a, b):
        n = page.execute_script("return window.zspace.stats.points")
        mouse_to(page, row, click=True)
        wait(page, f"window.zspace.stats.points === {n + 1}")
    wait(page, f"window.zspace.idle() && window.zspace.stats.paths === {paths + 2}")
    state = page.execute_script("return [window.zspace.state.a, window.zspace.state.b]")
    assert sorted(state) == sorted([a, b])
    for strip in ("path-lerp", "path-slerp"):
        widths = page.execute_script(
            f"return Array.from(document.querySelectorAll('#{strip} img')).map(i => i.naturalWidth)"
        )
        assert widths == [16] * 8
    no_console_errors(page)
