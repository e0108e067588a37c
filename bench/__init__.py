"""Benchmarks that print their figures (README, Benchmarks): python -m bench.NAME."""
