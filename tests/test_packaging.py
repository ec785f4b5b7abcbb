"""Packaging, lock and environment: what `pip install .` declares and ships, what `make setup` installs.

Static checks of pyproject.toml, requirements*.txt, environment.yml and the Makefile; subprocesses that import
ARCScheduler and the integrations and list the modules they loaded (no pandas, TensorFlow, FastEstimator or Hydra
for inference; each integration only its own framework); a `pip wheel --no-deps` of the sources and its file list.
The install itself (the wheel in a fresh venv with torch, no TensorFlow) is checked by hand, as the README says; it
needs the package indexes.
"""
from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from omegaconf import OmegaConf
from packaging.requirements import Requirement

from conftest import REPO

PACKAGES = ("core", "pipeline", "datagen", "arc_model", "selection", "experiments", "figures", "bench")
HEAVY = ("tensorflow", "keras", "fastestimator", "hydra", "omegaconf", "matplotlib", "transformers", "sklearn")
# import name -> distribution that provides it, where the two differ
DISTRIBUTION = {"cv2": "opencv-python-headless", "sklearn": "scikit-learn", "hydra": "hydra-core",
                "hydra_plugins": "hydra-joblib-launcher", "pycocotools": "fe-pycocotools",
                "calibration": "uncertainty-calibration", "yaml": "pyyaml", "PIL": "pillow"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def names(lines) -> dict[str, Requirement]:
    reqs = [Requirement(ln.split("#")[0].strip()) for ln in lines if ln.split("#")[0].strip()
            and not ln.strip().startswith("-")]
    return {canonical(r.name): r for r in reqs}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_file(name: str) -> dict[str, Requirement]:
    return names((REPO / name).read_text().splitlines())


def imported_modules(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def scheduler_modules() -> list[str]:
    return imported_modules("from arc_model import ARCScheduler")


@pytest.mark.slow
def test_arc_scheduler_import_stays_light(scheduler_modules):
    loaded = {m.split(".")[0] for m in scheduler_modules}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert {"torch", "numpy", "h5py", "cv2"} <= loaded


def test_a_grids_main_process_does_not_load_torch():
    """`python -m experiments.benchmark -m ...` and `python -m selection -m ...` only compose and launch in the main
    process; torch, pandas and scikit-learn load in the jobs (the grid overhead: ~1.5 s before the first
    job starts)."""
    loaded = {m.split(".")[0] for m in imported_modules("import experiments.benchmark, selection.__main__")}
    assert not loaded & {"torch", "pandas", "sklearn"}, sorted(loaded & {"torch", "pandas", "sklearn"})


@pytest.mark.slow
def test_arc_scheduler_import_loads_no_pandas_tensorflow_fastestimator_or_hydra():
    """Inference without the pipeline: core.history and core.points import pandas where they use it."""
    code = ("import arc_model; from arc_model import ARCScheduler; import sys; "
            "print(sorted(m for m in ('pandas','tensorflow','fastestimator','hydra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


ISOLATION = """
import importlib.util, json, sys
top = lambda: {m.split(".")[0] for m in sys.modules}
import arc_model.integrations
seen = {"integrations": sorted(top() & {"lightning", "transformers", "pandas"})}
if importlib.util.find_spec("transformers") and importlib.util.find_spec("accelerate"):
    import arc_model.integrations.huggingface
    seen["hf"] = sorted(top() & {"transformers", "lightning", "pytorch_lightning", "torchmetrics", "tensorflow"})
if importlib.util.find_spec("lightning"):
    import lightning.pytorch
    before = top()
    import arc_model.integrations.lightning
    seen["lightning"] = sorted(top() - before)
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_each_integration_imports_only_its_own_framework():
    """arc_model.integrations loads neither framework; .huggingface loads no Lightning (nor TensorFlow); .lightning
    adds nothing to what Lightning itself loads (Lightning's torchmetrics imports transformers when it is there).
    One subprocess, in that order: Lightning's import alone takes 10 s and more on a busy machine."""
    out = subprocess.run([sys.executable, "-c", ISOLATION], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["integrations"] == []
    assert seen.get("hf", ["transformers"]) == ["transformers"]
    assert seen.get("lightning", []) == []


@pytest.mark.slow
def test_wheel_holds_arc_model_its_integrations_and_the_core_modules_inference_imports(tmp_path):
    """`pip wheel --no-deps` of a copy of the sources (the build writes build/ and *.egg-info beside them)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in (*PACKAGES, "configs", "hydra_plugins"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "-w", str(tmp_path / "wheel"),
                          "--no-deps", "--no-build-isolation", "-q"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "wheel").glob("arc_repro-*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    inference = {m.replace(".", "/") + ".py" for m in imported_modules("import arc_model.scheduler")
                 if m.startswith(("arc_model.", "core."))} | {"arc_model/__init__.py", "core/__init__.py"}
    assert {"core/history.py", "core/points.py", "arc_model/weights.py"} <= inference
    integrations = {f"arc_model/integrations/{name}.py" for name in ("__init__", "lightning", "huggingface")}
    assert inference | integrations <= files, sorted(inference | integrations - files)
    metadata = next(f for f in files if f.endswith(".dist-info/METADATA"))
    requires = [ln for ln in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert requires and not any("pandas" in ln for ln in requires), requires


def test_pyproject_splits_inference_from_the_pipeline():
    project = pyproject()["project"]
    core = names(project["dependencies"])
    assert {"torch", "numpy", "h5py", "opencv-python-headless"} <= set(core)
    assert not set(core) & {"tensorflow", "fastestimator", "hydra-core", "opencv-python", "pandas"}
    extras = project["optional-dependencies"]
    assert set(names(extras["lightning"])) == {"lightning"} and set(names(extras["hf"])) == {"transformers",
                                                                                          "accelerate"}
    pipeline = names(project["optional-dependencies"]["pipeline"])
    assert {"fastestimator", "tensorflow", "hydra-core", "torchvision"} <= set(pipeline)
    # every pin of the pipeline extra is the verified one of requirements.txt
    pinned = requirement_file("requirements.txt")
    for name, req in pipeline.items():
        if str(req.specifier).startswith("=="):
            assert str(pinned[name].specifier) == str(req.specifier), name


def test_configs_ship_as_package_data():
    """`configs` is a data-only namespace package beside `core`, so Path(core/cli.py).parents[1] / "configs" is
    the configs directory in a checkout and in an installed (non-editable) copy alike."""
    setuptools = pyproject()["tool"]["setuptools"]
    assert "configs*" in setuptools["packages"]["find"]["include"]
    patterns = setuptools["package-data"]["*"]
    files = [p for p in (REPO / "configs").rglob("*") if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(p.name, pat) for pat in patterns) for p in files)
    from core import cli

    assert cli.CONFIGS == REPO / "configs"


def direct_imports() -> set[str]:
    """Top-level names imported anywhere in the packages and tests (plus pytest.importorskip targets)."""
    found = set()
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")] + list((REPO / "tests").glob("*.py"))
    for path in files:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        found |= set(re.findall(r"importorskip\(\"([A-Za-z_]\w*)", source))
    local = set(PACKAGES) | {"conftest"} | {p.stem for p in (REPO / "tests").glob("*.py")}
    return {name for name in found if name not in sys.stdlib_module_names and name not in local}


def test_every_direct_import_is_declared_in_requirements():
    declared = set(requirement_file("requirements.txt"))
    missing = sorted(name for name in direct_imports() if canonical(DISTRIBUTION.get(name, name)) not in declared)
    assert not missing, f"imported but not in requirements.txt: {missing}"


def test_lock_is_complete_with_one_headless_opencv():
    lock = requirement_file("requirements-lock.txt")
    assert all(str(r.specifier).startswith("==") for r in lock.values())
    assert "opencv-python" not in lock and "opencv-python-headless" in lock
    assert {"pip", "setuptools", "wheel"} <= set(lock)  # pip freeze --all
    for name, req in requirement_file("requirements.txt").items():
        assert name in lock, f"{name} is in requirements.txt but not in the lock (run `make lock`)"
        version = str(lock[name].specifier).removeprefix("==")
        assert req.specifier.contains(version, prereleases=True), f"lock has {name}=={version}, wants {req.specifier}"


def test_environment_yml_installs_the_lock():
    env = OmegaConf.to_container(OmegaConf.load(REPO / "environment.yml"))
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements-lock.txt" in pip


def test_make_help_lists_every_target_once():
    out = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")]
    targets = re.findall(r"^([a-z][\w-]*):(?!=)", (REPO / "Makefile").read_text(), flags=re.M)
    assert sorted(listed) == sorted(set(targets)), set(targets) ^ set(listed)
    assert all(len(line.split(None, 1)) == 2 for line in out.stdout.splitlines() if line.startswith("  "))


def test_slow_marker_is_registered_and_make_test_fast_leaves_marked_tests_out():
    """`make test-fast` runs `pytest -m "not slow"`: the marker is registered in pyproject.toml (an unregistered mark
    is only a warning) and some tests carry it (else the fast run would be the whole suite)."""
    markers = pyproject()["tool"]["pytest"]["ini_options"]["markers"]
    assert any(marker.split(":")[0].strip() == "slow" for marker in markers), markers
    recipe = re.search(r"^test-fast:.*\n\t(.*)", (REPO / "Makefile").read_text(), flags=re.M)
    assert recipe and '-m "not slow"' in recipe.group(1)
    marked = [p.name for p in (REPO / "tests").glob("test_*.py") if re.search(r"\bpytest\.mark\.slow\b", p.read_text())]
    assert marked
