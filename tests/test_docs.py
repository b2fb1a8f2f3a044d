"""The code in docs/writing-plugins.md runs, so the page cannot rot.

Every ```python block runs: one preceded by ``<!-- file: NAME -->`` is written to that file; the
others are joined, in order, into one test module, so a later block may use what an earlier one
defined. pytest then runs the lot in a subprocess, as a plugin author would run their tests.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "writing-plugins.md"

BLOCK = re.compile(r"(?:<!-- file: (?P<file>[\w.]+) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)^```\n", re.S | re.M)


def blocks(lang: str) -> list[tuple[str | None, str]]:
    return [(m["file"], m["code"]) for m in BLOCK.finditer(PAGE.read_text()) if m["lang"] == lang]


def test_python_blocks_run(tmp_path):
    files: dict[str, str] = {}
    snippets = []
    for name, code in blocks("python"):
        if name:
            files[name] = files.get(name, "") + code
        else:
            snippets.append(code)
    assert "automl_decision_tree.py" in files and snippets, "the page's blocks were not found"
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    (tmp_path / "test_page_snippets.py").write_text("\n".join(snippets) + "\ndef test_snippets_ran():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"the page's code failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    passed = int(re.search(r"(\d+) passed", done.stdout)[1])
    assert passed > 10, done.stdout[-2000:]  # the estimator checks ran, not only the snippets


def test_toml_blocks_declare_the_entry_point_group():
    (project,) = [tomllib.loads(code) for _, code in blocks("toml")]
    entry_points = project["project"]["entry-points"]["automl.plugins"]
    modules = {name.removesuffix(".py") for name, _ in blocks("python") if name}
    assert set(entry_points.values()) <= modules
    assert project["tool"]["setuptools"]["py-modules"] == list(entry_points.values())


def test_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert "docs/writing-plugins.md" in readme and "examples/automl-lightgbm" in readme
    for target in re.findall(r"\]\((\.\./[^)#]+)", PAGE.read_text()):
        assert (PAGE.parent / target).resolve().exists(), target
