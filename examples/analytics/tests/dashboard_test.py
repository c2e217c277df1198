"""Dashboard check in headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

Loads the page once, sends more events, and waits for the page to show the new figures
WITHOUT a reload (a marker set in the page's JS context must survive), then compares every
figure on the page with the counts the scenario computed from what it sent.
"""

import os
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
TOP_PAGES_SHOWN = 10


def browser(workdir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # The machine has no outside network: nothing may try to phone home or update.
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-', dir=workdir)}"]:
        opts.add_argument(flag)
    # An explicit driver path keeps Selenium Manager from trying to download one.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


# Read in one script run: the page rebuilds its tables every poll, so element handles taken
# across several WebDriver calls could go stale between them.
READ_PAGE_JS = """
const num = (id) => { const t = document.getElementById(id).textContent.trim(); return /^\\d+$/.test(t) ? Number(t) : null; };
const rows = (id, attr) => [...document.querySelectorAll('#' + id + ' tr[data-' + attr + ']')]
  .map((tr) => [tr.getAttribute('data-' + attr), Number(tr.querySelector('td.count').textContent)]);
return {
  active_users: num('active-users'), total_user_events: num('total-user-events'),
  total_page_views: num('total-page-views'), dead_letters: num('dead-letters'), total_lag: num('total-lag'),
  event_counts: Object.fromEntries(rows('event-counts', 'type')), top_pages: rows('top-pages', 'page'),
  updates: Number(document.getElementById('status').dataset.updates || 0),
};
"""


def read_page(driver):
    page = driver.execute_script(READ_PAGE_JS)
    page["top_pages"] = [tuple(r) for r in page["top_pages"]]
    return page


def mismatches(page, ledger):
    """Differences between what the page shows and what the scenario sent."""
    out = []
    expect = {
        "active_users": len(ledger.users),
        "total_user_events": ledger.user_events,
        "total_page_views": ledger.page_views,
        "dead_letters": ledger.bad_records,
        "total_lag": 0,
        "event_counts": dict(ledger.event_types),
    }
    for key, want in expect.items():
        if page[key] != want:
            out.append(f"{key}: page shows {page[key]!r}, expected {want!r}")
    shown = page["top_pages"]
    if len(shown) != min(TOP_PAGES_SHOWN, len(ledger.pages)):
        out.append(f"top pages: {len(shown)} rows shown")
    for path, views in shown:
        if ledger.pages.get(path) != views:
            out.append(f"top page {path}: page shows {views}, expected {ledger.pages.get(path)}")
    if shown:
        floor = min(v for _, v in shown)
        hidden = {p: v for p, v in ledger.pages.items() if p not in dict(shown) and v > floor}
        if hidden:
            out.append(f"pages with more views than the shown top pages are missing: {hidden}")
    return out


def wait_until_matches(driver, ledger, timeout):
    deadline = time.time() + timeout
    while True:
        page = read_page(driver)
        diff = mismatches(page, ledger)
        if not diff or time.time() > deadline:
            return page, diff
        time.sleep(0.25)


def run(checks, app, ledger, send_more, wait_for_zero_lag, workdir, screenshot):
    driver = browser(workdir)
    try:
        driver.get(app.base + "/")
        checks.equal("dashboard: page title", driver.title, "Arus analytics")
        page, diff = wait_until_matches(driver, ledger, 20)
        checks.check("dashboard: initial figures equal what was sent", not diff, "; ".join(diff))

        # Anything that reloads the page wipes this; only in-place updates keep it.
        driver.execute_script("window.__scenarioMarker = 'still here';")
        updates_before = page["updates"]
        failures = send_more(150)
        checks.equal("dashboard phase: every request acknowledged", failures, 0)
        ok, _ = wait_for_zero_lag()
        checks.check("dashboard phase: lag reaches 0", ok)
        page, diff = wait_until_matches(driver, ledger, 20)
        checks.check("dashboard: shows the new figures", not diff, "; ".join(diff))
        checks.equal("dashboard: updated without a reload",
                     driver.execute_script("return window.__scenarioMarker;"), "still here")
        checks.check("dashboard: polled repeatedly", page["updates"] > updates_before,
                     f"{page['updates']} <= {updates_before}")
        driver.save_screenshot(screenshot)
        checks.check("dashboard: screenshot saved", os.path.getsize(screenshot) > 10_000, screenshot)
        print(f"dashboard figures: {page}", flush=True)
    finally:
        driver.quit()
