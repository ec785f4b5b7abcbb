"""Benchmarks run by `make bench`: each `bench/bench_<name>.py` has `main()` that prints `key=value` lines.

Ratios are measured against a baseline in the same run (these machines are noisy)."""
