"""Benchmarks of the caller-thread cost and end-to-end delivery of ``instrument`` (run ``python bench/run.py``)."""
