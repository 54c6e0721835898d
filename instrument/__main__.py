"""``python -m instrument``: the same command line as the ``instrument`` console script."""

from __future__ import annotations

from instrument.plan._cli import main

raise SystemExit(main())
