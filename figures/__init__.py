"""Stage 6: the paper's tables and plots, rendered from stage results (SPEC §8)."""
