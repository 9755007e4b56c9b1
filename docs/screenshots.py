"""Screenshots of the web page for the README: `python docs/screenshots.py` (rerunnable; about 20 s).

Starts `tagger serve` on the shipped models (exports/) on a free 127.0.0.1 port, opens the page in Debian's
headless chromium, tags the example sentence and writes, next to this file:
  ui-1440.png       en-ner at 1440 px (a desktop)
  ui-360.png        en-ner at 360 px (a phone)
  ui-upos-1440.png  en-upos at 1440 px
Each is cut to the page's content (the viewport as tall as its <main>), so it stays small.
It drives the browser with the test suite's helpers (tests/browser/chrome.py), so both see the page the same way.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.chrome import chromium, live_server, open_page, resize, tag  # noqa: E402

EXAMPLE = "Tim Cook visited the Apple store in Berlin on Monday."
SHOTS = [("ui-1440.png", 1440, "en-ner"), ("ui-360.png", 360, "en-ner"), ("ui-upos-1440.png", 1440, "en-upos")]


def main() -> int:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        print("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
        return 1
    with live_server(ROOT / "exports", TAGGER_DEFAULT_MODEL="en-ner") as base, tempfile.TemporaryDirectory() as tmp:
        for name, width, model in SHOTS:
            with chromium(Path(tmp) / name, width, 800) as driver:
                tag(open_page(driver, base), EXAMPLE, model)
                driver.execute_script("document.activeElement.blur()")  # no focus ring in the picture
                height = driver.execute_script(
                    "return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)"
                )
                resize(driver, width, height)
                out = Path(__file__).parent / name
                driver.save_screenshot(str(out))
                print(f"{out.relative_to(ROOT)}: {width} x {height} px, {out.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
