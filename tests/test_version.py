"""The version string: one source (instrument/_version.py) for the package metadata and the User-Agent."""

from __future__ import annotations

import importlib.metadata
import re

import instrument


def test_the_version_is_the_installed_distributions_version() -> None:
    assert instrument.__version__ == importlib.metadata.version("instrument")


def test_the_version_is_a_release_version_number() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", instrument.__version__)
