"""`python -m selection [overrides]`: pick one ARC candidate with the proxy task (configs/selection.yaml)."""
import selection.config  # noqa: F401  (registers the schema)
from core.cli import stage
from selection.select import select

main = stage("selection")(select)

if __name__ == "__main__":
    main()
