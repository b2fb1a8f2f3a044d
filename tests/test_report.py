"""automl report: real runs on bundled tables, the HTML and PNG files it writes, the out-of-fold
numbers against the search's own, the command as a user runs it, and a real headless browser."""

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_bundled
from matplotlib.image import imread
from test_cli import automl_cli

import automl

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fit(table: pd.DataFrame, target: str, models: list[str], path: Path) -> automl.Result:
    return automl.fit_best(table.drop(columns=[target]), table[target], models=models, n_trials=3, cv=3,
                           time_budget=None, path=path)


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    """A multiclass run, and the CSV file it was fitted from."""
    folder = tmp_path_factory.mktemp("penguins")
    read_bundled("penguins").to_csv(folder / "penguins.csv", index=False)
    table = pd.read_csv(folder / "penguins.csv")  # as `automl report --data` will read it
    return fit(table, "species", ["logistic_regression", "hist_gradient_boosting"], folder / "run"), table, folder / "penguins.csv"


@pytest.fixture(scope="module")
def mpg(tmp_path_factory):
    """A regression run with a column name that is also HTML, and its CSV file."""
    folder = tmp_path_factory.mktemp("mpg")
    read_bundled("mpg").rename(columns={"name": "<i>name</i>"}).to_csv(folder / "mpg.csv", index=False)
    table = pd.read_csv(folder / "mpg.csv")
    return fit(table, "mpg", ["ridge"], folder / "run"), table, folder / "mpg.csv"


def checksums(run_dir: Path) -> dict[str, str]:
    """Every file of the run outside its report folder."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*")) if p.is_file() and "report" not in p.relative_to(run_dir).parts
    }


def check_self_contained(page: str, folder: Path) -> None:
    """No external reference, every image embedded, and one PNG file beside the page per image."""
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(|@import|<script|<link", page, re.IGNORECASE)
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == len(sources)
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png
        height, width = imread(png).shape[:2]
        assert 800 <= width <= 1600 and 300 <= height <= 2400, (png.name, width, height)


def test_report_without_data(penguins):
    result, _, _ = penguins
    before = checksums(result.path)
    path = automl.report(result.path)
    assert path == result.path / "report" / "report.html"
    page = path.read_text()
    for section in ("leaderboard", "out-of-fold", "errors", "feature-importance", "history", "hyperparameters", "data", "run"):
        assert f'<section id="{section}">' in page
    assert page.count("needs --data") == 3  # the out-of-fold sections say so in the contents
    assert f"automl report {result.path} --data DATA.csv" in page
    assert f"{result.score:.4f}" in page and "Adelie, Chinstrap, Gentoo" in page
    assert {p.name for p in path.parent.glob("*.png")} == {"history.png", "hyperparameter_importances.png"}
    check_self_contained(page, path.parent)
    assert checksums(result.path) == before  # the run's own files are untouched
    automl.load(result.path)


@pytest.fixture(scope="module")
def penguins_report(penguins, tmp_path_factory) -> Path:
    """The penguins run's report with its data (the target column is in the table)."""
    result, table, _ = penguins
    return automl.report(result, table, output=tmp_path_factory.mktemp("report") / "out")


def test_out_of_fold_matches_the_search_fold_by_fold(penguins, penguins_report):
    result, table, _ = penguins
    page = penguins_report.read_text()
    rows = re.findall(r'<td>fold \d</td><td class="num">([\d,]+)</td><td class="num">([^<]+)</td>'
                      r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td>', page)
    trials = result.trials
    own = trials[(trials["model"] == result.model_name) & (trials["state"] == "complete")]
    search = own.loc[own["score"].idxmax(), "fold_scores"]
    # the same folds and configuration: deterministic models score exactly as in the search
    assert [float(here) for _, here, _, _ in rows] == pytest.approx(search, abs=1e-4)
    assert [float(there) for _, _, there, _ in rows] == pytest.approx(search, abs=1e-4)
    assert [d for _, _, _, d in rows] == ["0.0000"] * 3
    assert sum(int(n.replace(",", "")) for n, _, _, _ in rows) == len(table)
    assert f"Confusion matrix of the out-of-fold predictions ({len(table)} rows" in page  # its counts' sum
    pooled = float(re.search(r"out-of-fold predictions at once \(not fold by fold\), \S+ is <strong>([^<]+)<", page)[1])
    assert pooled == pytest.approx(result.score, abs=0.05)
    assert {p.name for p in penguins_report.parent.glob("*.png")} == {
        "history.png", "hyperparameter_importances.png", "confusion_matrix.png", "roc_pr.png", "permutation_importance.png",
    }
    for column in set(table.columns) - {"species"}:
        assert column in page
    assert "needs --data" not in page
    check_self_contained(page, penguins_report.parent)


def test_regression_report_from_the_command(mpg, tmp_path):
    result, table, csv = mpg
    out = tmp_path / "report"
    done = automl_cli("report", str(result.path), "--data", str(csv), "--output", str(out))
    assert done.stdout.strip() == str(out / "report.html")
    assert "refitting" in done.stderr and "fold 3 of 3" in done.stderr  # progress, as logged
    page = (out / "report.html").read_text()
    assert {"predicted_vs_actual.png", "residuals.png", "permutation_importance.png"} <= {p.name for p in out.glob("*.png")}
    assert not (out / "confusion_matrix.png").exists()
    check_self_contained(page, out)
    # every string from the data is escaped
    assert "<i>name</i>" not in page and "&lt;i&gt;name&lt;/i&gt;" in page
    assert "ridge</strong>: a single hyperparameter" in page  # why a model has no importances
    assert not (out / "hyperparameter_importances.png").exists()


def test_wrong_data_and_missing_run_exit_2(mpg, tmp_path):
    result, table, _ = mpg
    fewer = tmp_path / "fewer.csv"
    table.iloc[:-5].to_csv(fewer, index=False)
    done = automl_cli("report", str(result.path), "--data", str(fewer), check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the data differs from the data the run was fitted on" in done.stderr
    assert "need the same data as the run" in done.stderr

    done = automl_cli("report", str(tmp_path / "no-run"), check=False)
    assert done.returncode == 2 and "manifest.json is missing" in done.stderr
    assert not (result.path / "report" / "report.html").exists()  # nothing written for failed reports


def test_without_matplotlib_the_command_says_what_to_install(penguins, monkeypatch, capsys):
    from automl._cli import main

    result, _, _ = penguins
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert main(["report", str(result.path)]) == 2
    assert "automl report needs: pip install 'automl-select[report]'" in capsys.readouterr().err


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(penguins_report, tmp_path):
    path = penguins_report
    shot = tmp_path / "page.png"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,3000", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pixels = imread(shot)
    assert pixels.shape[:2] == (3000, 1200)
    assert pixels[..., :3].std() > 0.05, "the screenshot is blank"
    # not only the text: the figures were drawn (a good share of the page is neither white nor near it)
    assert (pixels[..., :3].mean(axis=2) < 0.9).mean() > 0.03
