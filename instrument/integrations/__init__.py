"""Integrations: scope binding for web frameworks, Celery and OpenTelemetry, one module each.

Each module imports its framework (install the matching extra: ``instrument[fastapi]``,
``instrument[flask]``, ``instrument[django]``, ``instrument[celery]``, ``instrument[opentelemetry]``);
importing ``instrument`` or this package imports none of them.
"""

from __future__ import annotations

from instrument.integrations._common import cookie, header

__all__ = ["cookie", "header"]
