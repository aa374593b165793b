"""The page in headless Chromium, driven as a person would: an image segmented, a
video opened, an object painted on frame 0 with the brush, propagated, and the mask
the page shows on the last frame checked against the service's own. A bad file shows
its error in words. A screenshot of each step goes to SHOTS.

Usage: page_browser.py BASE_URL TOKEN FIXTURES SHOTS"""
import io
import json
import os
import sys
import urllib.request

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, token, fixtures, shots = sys.argv[1:5]
os.makedirs(shots, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("SEGKIT_CHROMIUM", "/usr/bin/chromium")
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu"]:
    options.add_argument(argument)
driver = webdriver.Chrome(service=Service(os.environ.get("SEGKIT_CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
step = 0


def shot(name):
    global step
    step += 1
    driver.save_screenshot(f"{shots}/{step:02d}-{name}.png")


def wait_for(condition, seconds=60, what=""):
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: d.execute_script(f"return {condition}"))
    except Exception:
        shot("timeout")
        error = driver.execute_script("const e = document.getElementById('error'); return e ? e.innerText : ''")
        raise AssertionError(f"waited {seconds} s for {what or condition}; the page's error banner says: {error!r}")


def fetch(path):
    request = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


try:
    driver.get(f"{base}/?token={token}")
    wait_for("document.getElementById('model').options.length > 0", what="the model list")
    shot("loaded")

    # An image: segmented, its legend listed.
    driver.find_element(By.ID, "image-file").send_keys(f"{fixtures}/image.png")
    wait_for("document.body.dataset.image === 'segmented'", what="the image segmented")
    legend = driver.find_element(By.ID, "legend").text
    assert "%" in legend, legend
    shot("image-segmented")

    # A bad file: the error in words, not a blank page.
    driver.find_element(By.ID, "image-file").send_keys(f"{fixtures}/not-an-image.png")
    wait_for("document.body.dataset.image === 'error'", what="the error shown")
    error = driver.find_element(By.ID, "error").text
    assert "not a JPEG or PNG" in error, error
    shot("image-error")

    # A video: opened from a zip of frames.
    driver.find_element(By.ID, "video-file").send_keys(f"{fixtures}/frames.zip")
    wait_for("window.segkit && window.segkit.state && window.segkit.state.sessionId && window.segkit.state.frames === 6",
             what="the session opened")
    state = driver.execute_script("return window.segkit.state")
    session, width, height, frames = state["sessionId"], state["width"], state["height"], state["frames"]
    shot("video-opened")

    # Paint object 1 with the brush: strokes across the first mask's object 1.
    first = np.array(Image.open(f"{fixtures}/first_mask.png"))
    ys, xs = np.nonzero(first == 1)
    canvas = driver.find_element(By.ID, "mask-canvas")
    rect = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", canvas)
    scale_x, scale_y = rect[0] / width, rect[1] / height
    brush = driver.find_element(By.ID, "tool-brush")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", brush)
    brush.click()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", canvas)

    def at(x, y):  # offsets from the canvas's centre, in CSS pixels
        return int((x + 0.5 - width / 2) * scale_x), int((y + 0.5 - height / 2) * scale_y)

    for y in range(int(ys.min()) + 2, int(ys.max()) - 1, 4):
        row = xs[ys == y]
        if len(row) < 2:
            continue
        actions = ActionChains(driver)
        actions.move_to_element_with_offset(canvas, *at(row.min() + 1, y)).click_and_hold()
        actions.move_to_element_with_offset(canvas, *at((row.min() + row.max()) // 2, y))
        actions.move_to_element_with_offset(canvas, *at(row.max() - 1, y)).release().perform()
        wait_for("document.body.dataset.video === 'annotated'", what="the stroke saved")
    painted = np.array(Image.open(io.BytesIO(fetch(f"/v1/sessions/{session}/masks/0"))))
    overlap = ((painted == 1) & (first == 1)).sum() / max(1, (first == 1).sum())
    assert overlap > 0.3, f"the painted object covers {overlap:.2f} of the object"
    shot("painted")

    # Propagate, then the page shows the last frame: its mask is the service's.
    propagate = driver.find_element(By.ID, "propagate")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", propagate)
    propagate.click()
    wait_for("document.body.dataset.video === 'propagated'", seconds=300, what="the propagation")
    wait_for(f"window.segkit.state.current === {frames - 1}", what="the last frame shown")
    shown = np.array(driver.execute_script("return Array.from(window.segkit.shownMask())"), dtype=np.uint8).reshape(height, width)
    served = np.array(Image.open(io.BytesIO(fetch(f"/v1/sessions/{session}/masks/{frames - 1}"))))
    assert (shown == served).all(), f"the page shows {np.unique(shown)}, the service has {np.unique(served)}"
    assert json.loads(fetch(f"/v1/sessions/{session}"))["segmented"] == list(range(frames))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", canvas)
    shot("propagated")

    # A correction on frame 3: a stroke of object 1 along the top rows, then propagate again from there.
    driver.execute_script("const s = document.getElementById('frame-slider'); s.value = 3;"
                          "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'))")
    wait_for("window.segkit.state.current === 3", what="frame 3 shown")
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(canvas, *at(3, 3)).click_and_hold()
    actions.move_to_element_with_offset(canvas, *at(width // 2, 3))
    actions.move_to_element_with_offset(canvas, *at(width - 4, 3)).release().perform()
    wait_for("document.body.dataset.video === 'annotated'", what="the correction saved")
    corrected = np.array(Image.open(io.BytesIO(fetch(f"/v1/sessions/{session}/masks/3"))))
    assert (corrected[3, 3:width - 4] == 1).all(), corrected[3]
    assert json.loads(fetch(f"/v1/sessions/{session}"))["annotated"] == [0, 3]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", propagate)
    propagate.click()
    wait_for("document.body.dataset.video === 'propagated'", seconds=300, what="the propagation from frame 3")
    wait_for(f"window.segkit.state.current === {frames - 1}", what="the last frame shown again")
    shown = np.array(driver.execute_script("return Array.from(window.segkit.shownMask())"), dtype=np.uint8).reshape(height, width)
    served = np.array(Image.open(io.BytesIO(fetch(f"/v1/sessions/{session}/masks/{frames - 1}"))))
    assert (shown == served).all(), "after the correction, the page's last mask is the service's"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", canvas)
    shot("corrected")
    print(f"page: all checks passed; the last frame holds objects {sorted(set(np.unique(served)) - {0})}; screenshots in {shots}")
finally:
    driver.quit()
