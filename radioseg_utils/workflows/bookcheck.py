"""Quality gate for the built HTML book.

Checks that every page is free of error outputs, that internal links and images resolve,
and (when Chromium is installed) that every chapter renders to a non-blank screenshot in a
real headless browser.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

__all__ = ["Problem", "check_html", "screenshot_pages", "find_chromium"]

logger = logging.getLogger(__name__)

#: CSS classes myst-nb gives to error and stderr outputs of executed cells.
ERROR_CLASSES: frozenset[str] = frozenset({"traceback", "output_error", "output-error"})
#: Pages Sphinx generates that are not chapters.
NON_CHAPTERS: frozenset[str] = frozenset({"genindex.html", "search.html", "py-modindex.html"})
#: A screenshot whose pixel standard deviation is below this (0-255 scale) is blank.
BLANK_STD: float = 0.5
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=5000",
)


@dataclass(frozen=True)
class Problem:
    """One defect found in the built book."""

    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = set((attr.get("class") or "").split())
        if classes & ERROR_CLASSES:
            self.errors.append(" ".join(sorted(classes)))
        if tag == "a" and attr.get("href"):
            self.links.append(attr["href"])
        elif tag == "img" and attr.get("src"):
            self.images.append(attr["src"])


def _is_internal(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and bool(parts.path)


def check_html(html_dir: str | Path) -> list[Problem]:
    """Scan a built book for error outputs, broken internal links and missing images.

    Parameters
    ----------
    html_dir : path
        The ``_build/html`` folder.

    Returns
    -------
    list of Problem
        Empty when the book is clean.
    """
    html_dir = Path(html_dir)
    pages = sorted(html_dir.rglob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no HTML pages in {html_dir}; build the book first")
    problems: list[Problem] = []
    for page in pages:
        rel = str(page.relative_to(html_dir))
        parser = _PageParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        problems += [Problem(rel, "error output", cls) for cls in parser.errors]
        for kind, urls in (("broken link", parser.links), ("missing image", parser.images)):
            for url in urls:
                if not _is_internal(url):
                    continue
                target = (page.parent / unquote(urlsplit(url).path)).resolve()
                if not target.exists():
                    problems.append(Problem(rel, kind, url))
    return problems


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_std(path: Path) -> float:
    from PIL import Image

    with Image.open(path) as img:
        return float(np.asarray(img.convert("L"), dtype=np.float32).std())


def screenshot_pages(
    html_dir: str | Path,
    out_dir: str | Path,
    *,
    chromium: str | None = None,
    window: tuple[int, int] = (1280, 1600),
    timeout: float = 60.0,
) -> list[Problem]:
    """Render every chapter page in headless Chromium and save a PNG screenshot of each.

    A page whose screenshot is (almost) uniform counts as blank.

    Raises
    ------
    FileNotFoundError
        If no Chromium executable is found (``apt-get install chromium``).
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found for the screenshot check: apt-get install chromium")
    html_dir, out_dir = Path(html_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems: list[Problem] = []
    pages = [p for p in sorted(html_dir.glob("**/*.html"))
             if p.name not in NON_CHAPTERS and "_static" not in p.parts]
    for page in pages:
        rel = page.relative_to(html_dir)
        png = out_dir / (str(rel.with_suffix("")).replace("/", "__") + ".png")
        with tempfile.TemporaryDirectory() as profile:
            cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={window[0]},{window[1]}", f"--screenshot={png}",
                   page.resolve().as_uri()]
            try:
                subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                problems.append(Problem(str(rel), "screenshot", f"timed out after {timeout} s"))
                continue
        if not png.is_file():
            problems.append(Problem(str(rel), "screenshot", "Chromium wrote no image"))
        elif _png_std(png) < BLANK_STD:
            problems.append(Problem(str(rel), "blank page", str(png)))
        logger.info("screenshot %s", png)
    return problems
