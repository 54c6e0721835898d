"""Process-wide mode flags read on the hot path (set by ``configure`` and by capture)."""

from __future__ import annotations


class Mode:
    """Strict mode: programmer errors raise at the call instead of being reported and dropped."""

    __slots__ = ("strict",)

    def __init__(self) -> None:
        self.strict = False


mode = Mode()
