"""core is the ground floor: no module under core/ imports a stage package or the pipeline package above it, at
module level or inside a function (the stages meet through core and the `paths` group)."""
from __future__ import annotations

import ast

from conftest import REPO

ABOVE_CORE = {"datagen", "arc_model", "selection", "experiments", "figures", "bench", "pipeline", "examples"}


def imported_packages(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imported_packages_sees_imports_inside_functions():
    code = "import core.x\ndef f():\n    from datagen.plan import task_plan\n    import arc_model.config\n"
    assert imported_packages(code) == {"core", "datagen", "arc_model"}


def test_core_imports_no_stage_package():
    offenders = {}
    for path in sorted((REPO / "core").rglob("*.py")):
        above = imported_packages(path.read_text()) & ABOVE_CORE
        if above:
            offenders[str(path.relative_to(REPO))] = sorted(above)
    assert not offenders, offenders
