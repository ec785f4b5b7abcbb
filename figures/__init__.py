"""Stage 6: the paper's Tables 2-4 (median best metric per schedule x LR0, `*` best, `#` t-test vs ARC) and
the median-run curves of Figs 3-5, rendered from the benchmark's result rows (docs/experiments.md §8)."""
