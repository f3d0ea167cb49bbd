"""The dashboard in headless Chromium against a real daemon and the sandbox: the overview lists every
campaign, a campaign page shows rollout waves and the delivery funnel, a page follows a send without a
reload and says so when its stream drops, and no full recipient number or secret reaches a page or the
event stream. Each page is saved as a screenshot under ``docs/`` (1280x800) for the README."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.daemon.dashboard_repo import (DOCS, SECRET_VALUES, SECRETS, chromium_or_skip, fleet_repo, numbers,
                                         sms_campaign, write_recipients)
from tests.engine import sandbox_repo as repo

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

RECIPIENTS = numbers(300)
expect.set_options(timeout=10_000)  # a loaded CI machine: the daemon ticks every second, a pass may take two
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=40, seed=17, iot={"step_seconds": 0.4, "failure_rate": 0.05},
                             sms_gateway={"send_rate_per_port": 1000.0, "delivery_delay_s": 0.5})
    with running_sandbox(options) as running:
        SandboxControls.of(running).reset()
        yield running


def start_daemon(cwd: Path, decl: Path, *args: str) -> DaemonProcess:
    return DaemonProcess(cwd, str(decl), "--state", f"sqlite:///{cwd}/state.db", "--resync", "2", "--debounce-ms",
                         "50", "--webhook-token-env", "HOOK_TOKEN", *args, env=SECRETS)


@dataclass
class Fleet:
    daemon: DaemonProcess
    root: Path  # the repository
    decl: Path  # its declarations

    @property
    def url(self) -> str:
        return self.daemon.url


@pytest.fixture(scope="module")
def fleet(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One daemon over all three kinds of campaign; its 300 messages go out at 100 a second. The last test
    of the module kills it (a dropped stream)."""
    root = tmp_path_factory.mktemp("fleet")
    decl = fleet_repo(root / "ops", sandbox, recipients=RECIPIENTS, per_second=100)
    daemon = start_daemon(root, decl)
    try:
        daemon.wait_ready()
        yield Fleet(daemon, root / "ops", decl)
    finally:
        daemon.stop()


def new_page(browser: Browser) -> Page:
    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    page.set_default_timeout(10_000)
    return page


def shoot(page: Page, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring in the docs
    page.screenshot(path=str(DOCS / f"dashboard-{name}.png"))


def no_number_or_secret(text: str, recipients: list[str]) -> None:
    digits = set(re.findall(r"\d{8,}", text.replace(" ", "")))
    leaked = sorted(n for n in recipients if n in digits or n in text)
    assert not leaked, f"full recipient numbers on the page: {leaked[:3]}"
    for secret in SECRET_VALUES:
        assert secret not in text


def test_the_overview_lists_every_campaign_and_backend(browser: Browser, fleet: Fleet) -> None:
    page = new_page(browser)
    page.goto(fleet.url + "/")
    page.keyboard.press("Tab")  # keyboard first: the skip link, then real links in order
    expect(page.locator(":focus")).to_have_text("Skip to content")
    rows = page.locator("#campaigns-h ~ table tbody tr")
    expect(rows).to_have_count(3)
    for name in ("fw-rollout", "applet", "outage-notice"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    expect(page.locator("#backends-h ~ table tbody tr")).to_have_count(3)
    expect(page.locator("#backends-h ~ table")).to_contain_text("reachable")
    applet = rows.filter(has_text="applet")
    expect(applet).to_contain_text("yate")
    expect(applet.locator(".badge")).to_have_text(re.compile("Synced|Progressing"))
    expect(rows.filter(has_text="outage-notice")).to_contain_text("messages handed over")
    shoot(page, "overview")
    page.get_by_role("link", name="History").click()
    expect(page.locator("h1")).to_have_text("History")
    expect(page.locator("#passes-h ~ table tbody")).to_contain_text("start")
    expect(page.locator("#applied-h ~ table")).to_contain_text("create-campaign")
    shoot(page, "history")
    page.close()


def test_a_campaign_page_shows_waves_failure_rate_and_the_funnel(browser: Browser, fleet: Fleet) -> None:
    page = new_page(browser)
    page.goto(fleet.url + "/")
    page.get_by_role("link", name="fw-rollout").click()
    expect(page.locator("h1")).to_have_text("fw-rollout")
    waves = page.locator("ol.waves > li")
    expect(waves).to_have_count(3)
    expect(waves.first).to_contain_text("Wave 1")
    expect(waves.first).to_contain_text("up to 10% · 2 gateways")
    expect(page.locator("p.failure")).to_contain_text("against maxFailureRate 20.0%")
    eventually(lambda: "finished" in waves.first.inner_text(), timeout=20)
    shoot(page, "campaign-ota")
    page.goto(fleet.url + "/campaigns/outage-notice")
    funnel = page.locator("table.funnel tbody tr")
    expect(funnel).to_have_count(7)
    expect(funnel.first).to_contain_text("to send")
    expect(page.locator("table.funnel")).to_contain_text("delivered")
    page.goto(fleet.url + "/campaigns/applet")
    expect(page.locator("#participants-h")).to_contain_text("Participants")
    page.close()


def read_stream(url: str, seconds: float) -> str:
    """What an event stream sends until it has been quiet for ``seconds`` (it never ends by itself)."""
    received = []
    with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=seconds)) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        try:
            for chunk in reply.iter_text():
                received.append(chunk)
        except httpx.ReadTimeout:
            pass
    return "".join(received)


def test_no_full_number_or_secret_reaches_a_page_or_the_stream(fleet: Fleet) -> None:
    seen = [fleet.daemon.get(path).text for path in ("/", "/campaigns/outage-notice", "/campaigns/applet",
                                              "/campaigns/fw-rollout", "/history", "/status")]
    seen += [read_stream(f"{fleet.url}/events/campaigns/outage-notice", 1.5),
             read_stream(f"{fleet.url}/events/overview", 0.5)]
    assert "event: update" in seen[-1] and "Funnel" not in seen[-1]
    for text in seen:
        no_number_or_secret(text, RECIPIENTS)


def test_a_page_follows_a_send_without_a_reload_and_says_when_its_stream_drops(
        browser: Browser, fleet: Fleet) -> None:
    recipients = numbers(400, first=5000)
    page = new_page(browser)
    page.goto(fleet.url + "/campaigns/slow-notice")
    expect(page.locator("h1")).to_have_text("Not declared")
    page.evaluate("window.loadedOnce = true")
    csv = write_recipients(fleet.root, "slow.csv", recipients)
    repo.write(fleet.decl, "slow.yaml", sms_campaign("slow-notice", per_second=40, recipients_file=csv))
    expect(page.locator("h1")).to_have_text("slow-notice")
    handed = page.locator("p.handed")
    expect(handed).not_to_have_text(re.compile(r"^0 of 400"))
    first = handed.inner_text()
    expect(handed).not_to_have_text(first, timeout=5_000)  # moves with the send, no reload
    assert page.evaluate("window.loadedOnce") is True
    expect(page.locator("p.eta")).to_contain_text("left")
    expect(page.locator("figure.chart polyline")).to_have_count(3)
    shoot(page, "campaign-sms")
    no_number_or_secret(page.content(), recipients)
    fleet.daemon.process.send_signal(signal.SIGKILL)
    banner = page.locator("#connection")
    expect(banner).to_be_visible(timeout=5_000)
    expect(banner).to_contain_text(re.compile(r"Connection lost, showing state of \d\d:\d\d:\d\d UTC"))
    expect(page.locator("table.funnel")).to_be_visible()  # the last known state stays
    page.close()
