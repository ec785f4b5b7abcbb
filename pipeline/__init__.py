"""The pipeline as a whole, above every stage: `pipeline.plan` (`make plan`: jobs, runs and GPU-hours of every stage
and study, the SLURM commands, `make reproduce ARGS=...`'s check) and `pipeline.check_data` (`make check-data`: every
external input of a profile). Both compose every stage's config, so they live here and not in core, which imports
no stage (tests/test_core_imports.py)."""
