"""Headless Chromium for the dashboard test: Debian's `chromium` driven by Playwright for Python.

Playwright's own browser download cannot work here, so the browser is the system one; without it the
test skips and says how to install it (`.ci/run` installs it in CI)."""

import shutil

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("no Chromium found: install Debian's package (`apt-get install -y chromium`) — "
                "Playwright's own browser download is not used")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip(INSTALL_HINT)
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
