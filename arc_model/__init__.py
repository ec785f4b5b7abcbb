"""Stage 3: ARC preprocessing, network, hybrid loss, candidate training and the reusable controller
(paper §3.4, docs/experiments.md §3-5). Built in issue #4; usage in arc_model/README.md."""
