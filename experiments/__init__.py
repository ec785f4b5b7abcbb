"""Stage 5: CIFAR10 / MSCOCO / PTB benchmarks of ARC against BLR, CD, CCD, ED, SC, SLS, the LR range
test and the invocation-frequency study (paper §4, App. A.3, A.5, docs/experiments.md §7)."""
