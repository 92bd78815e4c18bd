"""The quality gate of the built book finds error outputs, broken links, blank pages."""

from __future__ import annotations

import pytest

from radioseg_utils.workflows import bookcheck


@pytest.fixture
def site(tmp_path):
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    (html / "img.png").write_bytes(b"\x89PNG")
    (html / "index.html").write_text(
        '<html><body><h1>Book</h1><a href="notebooks/01.html#fig">ch1</a>'
        '<a href="https://example.org">ext</a><img src="img.png"></body></html>')
    (html / "notebooks" / "01.html").write_text(
        '<html><body><p>fine</p><a href="../index.html">home</a></body></html>')
    return html


def test_clean_site_has_no_problems(site):
    assert bookcheck.check_html(site) == []


def test_finds_error_output_broken_link_and_missing_image(site):
    (site / "notebooks" / "02.html").write_text(
        '<div class="output traceback highlight-ipythontb">ValueError</div>'
        '<a href="03.html">next</a><img src="../_images/missing.png">')
    problems = {(p.page, p.kind) for p in bookcheck.check_html(site)}
    assert problems == {
        ("notebooks/02.html", "error output"),
        ("notebooks/02.html", "broken link"),
        ("notebooks/02.html", "missing image"),
    }


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HTML pages"):
        bookcheck.check_html(tmp_path)


@pytest.mark.skipif(bookcheck.find_chromium() is None, reason="Chromium not installed")
def test_screenshots_detect_blank_page(site, tmp_path):
    (site / "blank.html").write_text("<html><body></body></html>")
    problems = bookcheck.screenshot_pages(site, tmp_path / "shots")
    assert [(p.page, p.kind) for p in problems] == [("blank.html", "blank page")]
    assert (tmp_path / "shots" / "index.png").stat().st_size > 1000
