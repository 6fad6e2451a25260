"""The README is a front door (one screen of answer, under about 300 lines) and every relative
link in it and in docs/ points at a file that exists."""

from __future__ import annotations

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)")


def test_readme_is_short():
    with open(os.path.join(ROOT, "README.md")) as f:
        assert len(f.read().splitlines()) < 300


def test_relative_links_resolve():
    pages = [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "*.md"))]
    missing = []
    for page in pages:
        with open(page) as f:
            text = f.read()
        for target in LINK.findall(text):
            if target.startswith("/"):  # a path on the running server (/results.html)
                continue
            if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(page), target))):
                missing.append(f"{os.path.relpath(page, ROOT)} -> {target}")
    assert not missing, missing
