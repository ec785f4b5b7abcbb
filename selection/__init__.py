"""Stage 4: the WideResNet/SVHN proxy task that picks one ARC candidate, and the metric study
(paper §3.5, App. A.1-A.2, docs/experiments.md §6, §10.1)."""
