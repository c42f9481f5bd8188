"""Benchmarks: run on demand (``python -m tests.bench.<name>``), never as timed tests."""
