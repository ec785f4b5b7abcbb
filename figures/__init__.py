"""Stage 6: the paper's Tables 2-4 (Markdown, LaTeX, long-form CSV with CIs and p-values, beside the paper's printed
values), Figures 3-14 and the label mix, and REPORT.md, rendered from the benchmark's run directories or from the
authors' FastEstimator logs (figures/__main__.py lists every output; docs/experiments.md §8-§10)."""
