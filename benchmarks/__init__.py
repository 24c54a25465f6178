"""Benchmarks: speed, memory and quality measured side by side; run by `make bench`, `make quality`."""
