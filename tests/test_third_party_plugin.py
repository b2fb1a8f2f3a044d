"""A third-party plugin as a user gets it: examples/automl-lightgbm installed with pip, for real.

The distribution is built and installed (not editable) into the running environment, found by
fresh processes through its entry point, and uninstalled again, whatever happens in between.
"""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "automl-lightgbm"
DIST = "automl-lightgbm"
AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"

pytest.importorskip("lightgbm", reason="the example plugin needs LightGBM (in the test extra)")


def pip(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"pip {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def uninstall() -> None:
    pip("uninstall", "-y", DIST)  # a no-op (with a warning) when it is not installed


def listed_models() -> dict[str, str]:
    """``automl models``, run as a user runs it: model name -> distribution."""
    done = subprocess.run([AUTOML, "models"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: line.split()[2] for line in done.stdout.splitlines() if line.strip()}


FIT = textwrap.dedent(
    """
    import json
    import automl, automl_lightgbm
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(
        X, y, models=["lightgbm_dart", "logistic_regression"], n_trials=2, cv=3, time_budget=None,
        save=False, verbose=0, ensemble=False,
    )
    print(json.dumps({
        "leaderboard": result.leaderboard[["model", "trials", "complete", "score", "status"]].to_dict("records"),
        "module": automl_lightgbm.__file__,
    }))
    """
)


def test_example_plugin_installs_is_used_and_uninstalls(tmp_path, request):
    uninstall()  # a previous run that died half-way may have left it installed
    request.addfinalizer(uninstall)

    # built from a copy, so that the build leaves nothing (build/, *.egg-info) in the source tree
    source = shutil.copytree(
        EXAMPLE, tmp_path / "src" / DIST,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"),
    )
    # as a user installs it: pip builds it in an isolated environment with the setuptools its
    # pyproject.toml asks for, from the package index (this environment may have none: Python 3.12's
    # venv ships pip only); its dependencies are this environment's
    pip("install", "--no-deps", str(source))

    assert listed_models().get("lightgbm_dart") == DIST

    done = subprocess.run([sys.executable, "-c", FIT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    board = {row["model"]: row for row in out["leaderboard"]}
    assert set(board) == {"lightgbm_dart", "logistic_regression"}
    assert board["lightgbm_dart"]["complete"] == 2, board["lightgbm_dart"]
    assert board["lightgbm_dart"]["score"] > 0.95 and board["lightgbm_dart"]["status"] == "ok"
    # the installed copy ran, not the example's source
    assert Path(out["module"]).parent not in (EXAMPLE, source)

    uninstall()
    assert "lightgbm_dart" not in listed_models(), "uninstalling left the plugin registered"
