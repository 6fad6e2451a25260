"""Fixtures for tests/app (helpers live in appdriver.py)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

# appdriver.py sits beside this file; make it importable whether or not tests/ are packages.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app import create_app  # noqa: E402
from appdriver import SLEEPS, WWW, make_request, run  # noqa: E402


@pytest.fixture
def sleeps():
    SLEEPS.clear()
    yield SLEEPS
    SLEEPS.clear()


@pytest.fixture
def www(tmp_path):
    """A copy of the repository's www/ in a tmp directory (tests may add files and symlinks)."""
    dst = tmp_path / "www"
    shutil.copytree(WWW, dst, ignore=shutil.ignore_patterns("1mb.bin"))
    return dst


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def lab(www, data_dir):
    """``create_app`` over the tmp www and data directories; ``lab(method, target, ...)`` answers."""
    application = create_app(str(www), str(data_dir))

    def call(method: str = "GET", target: str = "/", headers=None, body: bytes = b""):
        return run(application.handle(make_request(method, target, headers, body)))

    call.app = application
    call.www = www
    call.data_dir = data_dir
    return call
