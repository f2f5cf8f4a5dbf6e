"""The analyst console in a real browser: Debian's chromium driven by Playwright, headless, against a real
``mlscale console`` with a threat model trained on one Zeek capture of ../shared/data.

Screenshots of each main view are written under the test's tmp folder (``MLSCALE_SCREENSHOTS=DIR`` writes
them there instead, as the README's were made).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CAPTURE = "stratosphere-zeek-labeled/008-zeek-mixed"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _need_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install 'mlscale[test]'")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: apt-get install chromium (./run test installs it as root)")
    return sync_playwright


def _mlscale(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mlscale.cli", *args], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _need_browser()  # skip before training anything
    data_dir = Path(os.environ.get("MLSCALE_DATA_DIR", "../shared/data"))
    capture = data_dir / CAPTURE
    if not capture.exists():
        pytest.skip(f"needs {capture} (set MLSCALE_DATA_DIR)")
    root = tmp_path_factory.mktemp("console")
    reg, runs, reports = root / "registry", root / "runs", root / "reports"
    _mlscale(
        "train",
        "threat",
        "--data",
        str(capture),
        "--name",
        "zeek",
        "--registry",
        str(reg),
        "--topics",
        "4",
        "--passes",
        "2",
        "--threads",
        "1",
    )
    _mlscale(
        "threat",
        "score",
        "--model",
        "zeek",
        "--data",
        str(capture),
        "--out",
        str(runs / "day1.parquet"),
        "--registry",
        str(reg),
    )
    for name, p99 in (("before", 4.0), ("after", 2.0)):
        folder = reports / name
        folder.mkdir(parents=True)
        steps = [
            {
                "offered_rps": r,
                "achieved_rps": r,
                "error_rate": 0.0,
                "latency_ms": {"p50": p99 / 4 * (1 + r / 500), "p99": p99 * (1 + r / 200)},
            }
            for r in (100, 200, 400, 800)
        ]
        report = {
            "url": "http://127.0.0.1:8000",
            "mode": "knee",
            "passed": True,
            "steps": steps,
            "generated_at": f"2026-01-0{1 if name == 'before' else 2}T00:00:00Z",
            "knee": {"knee_rps": 800},
        }
        (folder / "report.json").write_text(json.dumps(report))
        (folder / "report.html").write_text(f"<html><body><h1>Load test {name}</h1></body></html>")
    return {"root": root, "registry": reg, "runs": runs, "reports": reports, "data_dir": data_dir}


@pytest.fixture
def console(world: dict[str, Path]) -> Iterator[str]:
    yield from _start(
        [
            "--registry",
            str(world["registry"]),
            "--runs",
            str(world["runs"]),
            "--reports",
            str(world["reports"]),
            "--data-dir",
            str(world["data_dir"]),
        ],
        world["root"] / "console.log",
    )


def _start(args: list[str], log: Path) -> Iterator[str]:
    # stdout to a file, not a pipe: a pipe nobody reads would block the server once full
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlscale.cli", "console", "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the supervisor and its worker: stopped together below
        )
    try:
        deadline = time.monotonic() + 60
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"http://\S+/ui/", log.read_text())
            time.sleep(0.1)
        assert match, f"the console did not start: {log.read_text()}"
        yield match.group(0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def page_errors() -> list[str]:
    return []


def _browser(tmp_path: Path, errors: list[str]) -> Any:
    sync_playwright = _need_browser()
    pw = sync_playwright().start()
    ctx = pw.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        viewport={"width": 1400, "height": 900},
    )
    page = ctx.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return pw, ctx, page


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MLSCALE_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_hunt_verdict_retrain_promote_report(console: str, world: dict[str, Path], tmp_path: Path) -> None:
    errors: list[str] = []
    pw, ctx, page = _browser(tmp_path, errors)
    shots = _shots(tmp_path)
    try:
        page.goto(console)
        page.wait_for_selector("#flows tbody tr")
        # tab order: the four views first, in order, then sign-out and the hunt toolbar
        order = []
        for _ in range(6):
            page.keyboard.press("Tab")
            order.append(page.evaluate("() => document.activeElement.dataset.view || document.activeElement.id"))
        assert order == ["hunt", "models", "serving", "loadtests", "logout", "run"]
        assert page.locator("#flows tbody tr").count() == 50
        page.screenshot(path=str(shots / "hunt.png"))

        # filter: only udp flows, typed and submitted with Enter
        page.fill("#filters input[name=proto]", "udp")
        page.press("#filters input[name=proto]", "Enter")
        rows = "[...document.querySelectorAll('#flows tbody tr')]"
        page.wait_for_function(f"() => {rows}.length > 0 && {rows}.every(r => r.textContent.includes('udp'))")
        page.fill("#filters input[name=proto]", "")
        page.fill("#filters input[name=port]", "99999")
        page.press("#filters input[name=port]", "Enter")
        page.wait_for_selector("#banner:not([hidden])")
        assert "port" in page.inner_text("#banner")  # a bad filter names its field in the page
        page.fill("#filters input[name=port]", "")
        page.press("#filters input[name=port]", "Enter")
        page.wait_for_function("() => document.querySelector('#banner').hidden")

        # keyboard: the first row takes the focus, Enter opens the event
        page.wait_for_selector("#flows tbody tr[data-rank='1']")
        page.focus("#flows tbody tr[data-rank='1']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#detail h2:has-text('Event rank 1')")
        assert page.locator("#words tbody tr").count() >= 2
        first = page.inner_text("#flows tbody tr[data-rank='1']")
        page.screenshot(path=str(shots / "event.png"))

        # a low-risk verdict on the pattern (dst_ip + dst_port): on disk, in the model's feedback log
        page.select_option("#scope", "pattern")
        page.click("button.verdict[data-severity='3']")
        page.wait_for_selector("#verdict-result:has-text('recorded')")
        log = world["registry"] / ".feedback" / "threat" / "zeek.jsonl"
        verdicts = [json.loads(line) for line in log.read_text().splitlines()]
        assert verdicts[-1]["severity"] == 3
        assert verdicts[-1]["kind"] == "pattern"

        # an IP view with its peer graph
        page.click("#flows tbody tr[data-rank='1']")
        page.wait_for_selector("#detail .ip-link")
        page.locator("#detail .ip-link").last.click()  # the responder: the capture's busy host
        page.wait_for_selector("#graph circle")
        page.screenshot(path=str(shots / "ip.png"))

        # retrain with the feedback: the pattern leaves the top
        page.click("#retrain-btn")
        page.wait_for_selector("#moved tbody tr", timeout=120_000)
        before, after = (page.inner_text(f"#moved tbody tr:last-child td:nth-child({i})") for i in (2, 3))
        assert int(before.replace(",", "")) <= 5 < int(after.replace(",", ""))
        page.wait_for_selector("#flows tbody tr[data-rank='1']")
        assert page.inner_text("#flows tbody tr[data-rank='1']") != first
        page.screenshot(path=str(shots / "retrain.png"))

        # models: promote version 1 to production, confirmed in the page's dialog
        page.click(".tab[data-view=models]")
        page.wait_for_selector(".model[data-model='threat/zeek'] button.promote[data-version='1']")
        page.focus(".model[data-model='threat/zeek'] button.promote[data-version='1']")
        page.keyboard.press("Enter")  # by keyboard: the dialog opens with Confirm focused
        page.wait_for_selector("#confirm[open]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#models-info:has-text('production')")
        from mlscale.registry import open_store

        assert open_store(world["registry"]).aliases("threat", "zeek")["production"] == 1
        page.click("#diff-form button")
        page.wait_for_selector("#diff table")
        page.screenshot(path=str(shots / "models.png"))

        # load tests: two reports compared on one plot, one opened
        page.click(".tab[data-view=loadtests]")
        page.wait_for_selector("input.cmp")
        for box in page.locator("input.cmp").all():
            box.check()
        page.wait_for_selector("#compare-plot polyline")
        assert page.locator("#compare-plot polyline").count() == 4
        page.locator("button.open-report").first.click()
        page.wait_for_selector("#report-frame:not([hidden])")
        frame = page.frame_locator("#report-frame")
        assert "Load test" in frame.locator("h1").inner_text()
        page.screenshot(path=str(shots / "loadtests.png"))

        # serving: a server that is down is a clear message
        page.click(".tab[data-view=serving]")
        page.fill("#serving-url", "http://127.0.0.1:9")
        page.press("#serving-url", "Enter")
        page.wait_for_selector("#server-down")
        assert "cannot reach" in page.inner_text("#server-down")
        page.screenshot(path=str(shots / "serving.png"))
    finally:
        ctx.close()
        pw.stop()
    # the one failed load the browser logs is the deliberately bad filter's 422 (shown in the page)
    assert [e for e in errors if "422" not in e] == [], errors
    assert len(errors) <= 1, errors


def test_empty_registry_and_token(tmp_path: Path) -> None:
    errors: list[str] = []
    _need_browser()
    os.environ["MLSCALE_API_TOKEN"] = "s3cret"
    try:
        gen = _start(["--registry", str(tmp_path / "empty")], tmp_path / "console.log")
        url = next(gen)
    finally:
        del os.environ["MLSCALE_API_TOKEN"]
    pw, ctx, page = _browser(tmp_path, errors)
    try:
        page.goto(url)
        page.wait_for_selector("#login:not([hidden])")
        page.fill("#token", "s3cret")
        page.press("#token", "Enter")
        page.wait_for_selector("#no-runs")
        assert "no threat model" in page.inner_text("#no-runs")
        page.click(".tab[data-view=models]")
        page.wait_for_selector("#empty-registry")
        page.click(".tab[data-view=loadtests]")
        page.wait_for_selector("#no-reports")
        assert page.evaluate("() => location.href").find("s3cret") < 0
    finally:
        ctx.close()
        pw.stop()
        gen.close()
    assert not [e for e in errors if "401" not in e]
