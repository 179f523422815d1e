"""End to end in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven
by Selenium through the system chromedriver; nothing is downloaded): open a clip, play its
audio, accept / reject / edit with the keyboard and the buttons, reload, publish, and check
that a pair holding ``<script>`` shows as text."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qagen.publish import publish
from qagen.review.app import create_app
from qagen.workdir import WorkDir
from tests.review.conftest import SCRIPT, SCRIPT_SHARD, make_review_work, pairs_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed "
                                "(pip install 'qagen[test]')")
if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip("needs Chromium and its driver: apt-get install -y chromium chromium-driver",
                allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, WorkDir]]:
    """The review app on a free port of 127.0.0.1, in a thread."""
    import uvicorn

    work = make_review_work(tmp_path)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(work, reviewer="browser"), host="127.0.0.1",
                                        port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the review server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", work
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def pair(driver, qa_id: str):  # type: ignore[no-untyped-def]
    return driver.find_element(By.ID, f"pair-{qa_id}")


def state(driver, qa_id: str) -> str:  # type: ignore[no-untyped-def]
    return pair(driver, qa_id).find_element(By.CLASS_NAME, "review-state").text


def wait_state(driver, qa_id: str, prefix: str) -> None:  # type: ignore[no-untyped-def]
    WebDriverWait(driver, 10).until(lambda d: state(d, qa_id).startswith(prefix),
                                    message=f"{qa_id} never showed {prefix!r}")


def test_review_in_a_real_browser(server: tuple[str, WorkDir], browser) -> None:  # type: ignore[no-untyped-def]
    url, work = server
    driver = browser
    recs = pairs_of(work, SCRIPT_SHARD)
    clip_id = recs[0].clip_id
    script_pair = next(r for r in recs if SCRIPT in r.answer)
    keep, drop = (r for r in recs if r.clip_id == clip_id and r is not script_pair)
    fix = script_pair  # a curator rewrites the answer that holds markup
    untouched = next(r for r in recs if r.clip_id != clip_id)

    driver.get(url + "/")
    assert "reviewed 0 of 19" in driver.find_element(By.ID, "progress").text
    driver.find_element(By.CSS_SELECTOR, f'a[href^="/clips/{clip_id}"]').click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "pairs"))

    # the audio: the element can play WAV, loads the window's metadata and plays it
    audio = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const a = document.getElementById('player');
        const report = (err) => done({can: a.canPlayType('audio/wav'), ready: a.readyState,
            duration: a.duration, played: a.played.length, time: a.currentTime,
            ended: a.ended, error: err || (a.error && a.error.message) || null});
        const start = () => {
            a.addEventListener('ended', () => report(null));
            a.play().catch((e) => report(String(e)));
            setTimeout(() => report(null), 3000);
        };
        a.addEventListener('error', () => report('media error'));
        if (a.readyState >= 1) start(); else a.addEventListener('loadedmetadata', start);
    """)
    assert audio["error"] is None, audio
    assert audio["can"] in ("maybe", "probably") and audio["ready"] >= 1
    assert audio["duration"] == pytest.approx(0.5, abs=0.01)
    assert audio["played"] >= 1 and audio["time"] > 0 and audio["ended"], audio

    # the <script> pair is text: visible as characters, never run, no element made
    answer = pair(driver, script_pair.qa_id).find_element(By.CLASS_NAME, "a")
    assert SCRIPT in answer.text
    assert driver.execute_script("return document.querySelectorAll('#pairs script').length") == 0
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018

    # keyboard: j/k move, a accepts; r opens the reason, Enter rejects; e opens the editor
    pair(driver, keep.qa_id).click()
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("j")
    assert "current" in pair(driver, drop.qa_id).get_attribute("class")
    body.send_keys("k")
    assert "current" in pair(driver, keep.qa_id).get_attribute("class")
    driver.switch_to.active_element.send_keys("a")
    wait_state(driver, keep.qa_id, "accept")
    pair(driver, drop.qa_id).click()
    driver.switch_to.active_element.send_keys("r")
    reason = pair(driver, drop.qa_id).find_element(By.CLASS_NAME, "reason")
    reason.send_keys("wrong fact", Keys.ENTER)
    wait_state(driver, drop.qa_id, "reject: wrong fact")
    pair(driver, fix.qa_id).find_element(By.CSS_SELECTOR, "button.edit").click()
    box = pair(driver, fix.qa_id).find_element(By.CLASS_NAME, "edit-a")
    assert box.get_attribute("value") == fix.answer  # the <script> text, as text
    box.clear()
    box.send_keys("About 90 BPM, <b>steady</b>.")
    pair(driver, fix.qa_id).find_element(By.CLASS_NAME, "edit-go").click()
    wait_state(driver, fix.qa_id, "edit")
    assert "reviewed 3 of 19" in driver.find_element(By.ID, "progress").text

    driver.refresh()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "pairs"))
    assert state(driver, keep.qa_id).startswith("accept · browser")
    assert state(driver, drop.qa_id).startswith("reject: wrong fact")
    edited = pair(driver, fix.qa_id).find_element(By.CLASS_NAME, "ea")
    assert edited.text == "About 90 BPM, <b>steady</b>."  # the edit is text too
    assert "reviewed 3 of 19" in driver.find_element(By.ID, "progress").text
    assert "reviewed 3 of 4 pairs of this clip" in driver.find_element(By.ID, "clip-progress").text

    publish(work)
    rows = {r["qa_id"]: r for path in (work.published / "data" / "qa").glob("*.parquet")
            for r in pq.read_table(path).to_pylist()}
    assert drop.qa_id not in rows and len(rows) == 12
    assert rows[fix.qa_id]["answer"] == "About 90 BPM, <b>steady</b>." and rows[fix.qa_id]["edited"]
    assert rows[keep.qa_id]["reviewed"] and not rows[untouched.qa_id]["reviewed"]
