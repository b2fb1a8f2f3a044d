"""The built wheel holds the whole package: an editable install hides what the wheel would miss.

The wheel is built once for this module, with pip in an isolated build environment as any install
would, from a copy of the files a clean checkout has (so no egg-info left by an editable install
decides what goes in). Then:
- every subpackage is in it: each folder under ``automl/`` with an ``__init__.py``, and
  ``automl/plugins`` from ``plugins/``; every folder holding a ``.py`` file has one;
- its ``automl/`` is file for file what the sources hold, ``.py`` or not: a file kept in a package
  folder is there to be read at run time (today none is: nothing in ``automl/`` or ``plugins/``
  reads a file beside its module), so a data file left out of the package data fails here;
- its entry points are those ``pyproject.toml`` declares, and each names a module in the wheel.
"""

from __future__ import annotations

import configparser
import dataclasses
import posixpath
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"automl": "automl", "automl/plugins": "plugins"}  # folder in the wheel -> in the tree
BUILD_INPUTS = ["pyproject.toml", "README.md", "automl", "plugins"]  # what the build reads
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _source_files(tree: Path) -> dict[str, Path]:
    """Path in the wheel -> file in the tree, for everything the package folders hold."""
    found = {}
    for inside, folder in SOURCES.items():
        folder = tree / folder
        for path in folder.rglob("*"):
            relative = path.relative_to(folder)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                found[f"{inside}/{relative.as_posix()}"] = path
    return found


@dataclasses.dataclass
class Built:
    archive: zipfile.ZipFile
    tree: Path  # the copy it was built from
    files: dict[str, Path]  # what the copy it was built from holds, as _source_files gives it


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Built:
    tree = tmp_path_factory.mktemp("checkout")
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=LEFT_OUT)
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "-w", str(out), "-q",
         "--disable-pip-version-check", "--no-input"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (built,) = out.glob("automl_select-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield Built(archive, tree, _source_files(tree))


def test_wheel_holds_every_subpackage(wheel):
    names = set(wheel.archive.namelist())
    folders = {posixpath.dirname(path) for path in wheel.files if path.endswith(".py")}
    without_init = sorted(folder for folder in folders if f"{folder}/__init__.py" not in wheel.files)
    assert not without_init, f"folders with modules but no __init__.py: {without_init}"
    packages = sorted(folders)
    assert {"automl", "automl/data", "automl/fit", "automl/plugins", "automl/store"} <= set(packages), packages
    missing = [folder.replace("/", ".") for folder in packages if f"{folder}/__init__.py" not in names]
    assert not missing, f"subpackages not in the wheel (list them in pyproject's [tool.setuptools] packages): {missing}"


def test_wheel_holds_every_file_of_the_package(wheel):
    in_wheel = {name for name in wheel.archive.namelist() if name.startswith("automl/") and not name.endswith("/")}
    expected = set(wheel.files)
    assert not expected - in_wheel, f"in the sources but not in the wheel: {sorted(expected - in_wheel)}"
    assert not in_wheel - expected, f"in the wheel but not in the sources: {sorted(in_wheel - expected)}"


def test_wheel_declares_the_entry_points(wheel):
    project = tomllib.loads((wheel.tree / "pyproject.toml").read_text())["project"]
    declared = {"console_scripts": project["scripts"], **project["entry-points"]}
    names = set(wheel.archive.namelist())
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # entry point names keep their case
    parser.read_string(wheel.archive.read(entry_points).decode())
    found = {group: dict(parser[group]) for group in parser.sections()}
    assert found == declared
    assert len(declared["automl.plugins"]) >= 6, "the built-in models are registered through the entry-point group"
    for group, points in found.items():
        for name, target in points.items():
            module = target.partition(":")[0].strip()
            path = module.replace(".", "/")
            assert f"{path}.py" in names or f"{path}/__init__.py" in names, f"{group} {name} = {target}: no {module} in the wheel"
