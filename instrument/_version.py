"""The version of instrument: the package metadata's (pyproject reads it from here) and the User-Agent's."""

from __future__ import annotations

__version__ = "0.1.0"
