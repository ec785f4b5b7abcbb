"""`python -m arc_model [overrides]`: train one ARC candidate (arc_model.stage; configs/train_arc.yaml)."""
from arc_model.stage import train_candidate
from core.cli import stage

main = stage("train_arc")(train_candidate)

if __name__ == "__main__":
    main()
