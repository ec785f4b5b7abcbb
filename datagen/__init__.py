"""Stage 1-2: checkpoint-branch data generation over the 12 Table-1 tasks and ground-truth correction
(paper §3.2-3.3, docs/experiments.md §2)."""
