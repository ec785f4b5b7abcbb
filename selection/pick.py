"""`python -m selection.pick [overrides]`: score every candidate from its finished proxy runs and copy the
winner's arc.h5 to ${paths.selected_arc} (selection.select.pick)."""
import selection.config  # noqa: F401  (registers the schema)
from core.cli import stage
from selection.select import pick

main = stage("selection")(pick)

if __name__ == "__main__":
    main()
