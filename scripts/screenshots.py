"""``make screenshots``: the README's dashboard pictures, from the demo data, in headless Chromium.

    python scripts/screenshots.py [--out docs/screenshots]

Loads ``vodwatch demo`` into a new SQLite file (its default seed: the same viewers and numbers
every time, only the dates move with the day it runs), starts a real ``vodwatch serve`` on it,
signs in as the demo account and saves each page, in English and in Chinese, as PNG. Needs
Debian's ``chromium`` and ``fonts-noto-cjk`` and the dev extras (playwright).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from playwright.sync_api import Page, ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT: ViewportSize = {"width": 1280, "height": 860}
LANGUAGES = ("en", "zh")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        sys.exit("make screenshots needs Debian's chromium: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{work}/demo.db"
        # The key file is created beside the database (demo.db.key), as for any SQLite file.
        env = {key: value for key, value in os.environ.items() if not key.startswith("VODWATCH_")}
        login = load_demo(url, env)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vodwatch",
                "serve",
                "--port",
                str(args.port),
                "--database-url",
                url,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{args.port}"
            wait_until_up(base)
            shoot(chromium, base, login, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)


def load_demo(url: str, env: dict[str, str]) -> dict[str, str]:
    print("loading the demo data ...", file=sys.stderr)
    done = subprocess.run(
        [sys.executable, "-m", "vodwatch", "demo", "--database-url", url, "--json"],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    login: dict[str, str] = json.loads(done.stdout)
    return login


def wait_until_up(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"vodwatch serve did not answer at {base} within {timeout:.0f} s")
        time.sleep(0.2)


def shoot(chromium: str, base: str, login: dict[str, str], out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            for language in LANGUAGES:
                context = browser.new_context(
                    viewport=VIEWPORT,
                    locale="zh-CN" if language == "zh" else "en-US",
                    timezone_id="Asia/Shanghai" if language == "zh" else "Europe/London",
                )
                page = context.new_page()
                page.goto(f"{base}/dashboard/login?lang={language}")
                save(page, out, f"login-{language}.png")
                page.fill("input[name=email]", login["email"])
                page.fill("input[name=password]", login["password"])
                page.click("form[action$='/dashboard/login'] [type=submit]")
                page.wait_for_url(f"{base}/dashboard*")
                save(page, out, f"videos-{language}.png")
                page.click("a[href^='/dashboard/videos/']")
                page.wait_for_selector("[data-points]")
                save(page, out, f"video-{language}.png")
                page.click("a[href^='/dashboard/viewers/']")
                page.wait_for_load_state("networkidle")
                save(page, out, f"viewer-{language}.png")
                context.close()
        finally:
            browser.close()


def save(page: Page, out: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / name), full_page=True)
    print(f"saved {out / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
