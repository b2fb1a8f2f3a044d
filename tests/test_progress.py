"""The progress display: plain lines in logs and pipes, a live block in a terminal, an updated
cell in a Jupyter notebook, nothing with verbose=0."""

import os
import pty
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import automl

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
MODELS = ["logistic_regression", "hist_gradient_boosting"]


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def _counts_line(board: pd.DataFrame) -> str:
    return ", ".join(f"{r.model} {r.complete}/{r.pruned}/{r.failed}" for r in board.sort_values("model").itertuples())


def test_plain_lines_when_not_a_terminal(cancer, capsys):
    X, y = cancer
    result = automl.fit_best(X, y, models=MODELS, n_trials=3, cv=3, time_budget=None, save=False)
    err = capsys.readouterr().err
    final = [line for line in err.splitlines() if line.startswith("automl done:")]
    assert len(final) == 1, err
    assert "finished in" in final[0] and f"best {result.model_name} roc_auc {result.score:.4f}" in final[0]
    # the counts shown are the leaderboard's, in the searches' order
    shown = final[0].split("trials complete/pruned/failed: ")[1]
    expected = {r.model: f"{r.complete}/{r.pruned}/{r.failed}" for r in result.leaderboard.itertuples() if r.model != "ensemble"}
    assert dict(part.rsplit(" ", 1) for part in shown.split(", ")) == expected
    assert "\x1b[" not in err  # no terminal control codes in a log


def test_verbose_zero_shows_nothing(cancer, capsys):
    X, y = cancer
    automl.fit_best(X, y, models=["logistic_regression"], n_trials=2, cv=3, time_budget=None, save=False, verbose=0)
    assert "automl" not in capsys.readouterr().err
    with pytest.raises(automl.InputError, match="verbose must be 0"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, save=False, verbose=-1)


def _run_in_terminal(args: list[str]) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr, as a user's shell would."""
    master, slave = pty.openpty()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "120"}
    process = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return process.wait(timeout=120), output.decode()


def test_live_block_in_a_terminal_with_log_lines_above_it(cancer, tmp_path):
    X, y = cancer
    data = tmp_path / "cancer.csv"
    X.assign(diagnosis=y).to_csv(data, index=False)
    run = tmp_path / "run"
    code, out = _run_in_terminal(
        [AUTOML, "fit", str(data), "--target", "diagnosis", "--models", ",".join(MODELS), "--time-budget", "15",
         "--path", str(run)]
    )
    assert code == 0, out
    # the block is redrawn in place: back to its first line, clear to the end of the screen
    redraws = re.findall(r"\x1b\[(\d+)F\x1b\[J", out)
    assert len(redraws) >= 3 and set(redraws) == {str(1 + len(MODELS))}
    # log records are written above the block: a clear, then the record, then the block again
    assert re.search(r"\x1b\[\d+F\x1b\[J\[\s*\d+\.\d+s/15s\] \w+ #\d+ ", out), out
    # the final state stays on screen, with the saved leaderboard's counts
    final = out[out.rindex("automl done:"):].splitlines()
    board = automl.load(run).leaderboard
    for model in MODELS:
        row = board[board["model"] == model].iloc[0]
        line = next(line for line in final if line.strip().startswith(model))
        assert f"{row.complete} complete, {row.pruned} pruned, {row.failed} failed" in line
    assert "finished in" in final[0]


def test_quiet_cli_shows_no_progress(cancer, tmp_path):
    X, y = cancer
    data = tmp_path / "cancer.csv"
    X.assign(diagnosis=y).to_csv(data, index=False)
    code, out = _run_in_terminal(
        [AUTOML, "-q", "fit", str(data), "--target", "diagnosis", "--models", "logistic_regression", "--n-trials", "2",
         "--cv", "3", "--path", str(tmp_path / "run")]
    )
    assert code == 0 and "automl searching" not in out and "automl done" not in out and "\x1b[" not in out


def test_updated_output_cell_in_a_jupyter_kernel(tmp_path):
    import jupyter_client.manager  # in the test extra, with ipykernel

    manager, client = jupyter_client.manager.start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute_interactive(textwrap.dedent("""
            import automl
            from sklearn.datasets import load_breast_cancer
            X, y = load_breast_cancer(return_X_y=True, as_frame=True)
            result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=3, time_budget=60, save=False)
        """), timeout=120, output_hook=(messages := []).append)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    shown = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
    assert shown and shown[0]["msg_type"] == "display_data"
    ids = {m["content"]["transient"]["display_id"] for m in shown}
    assert len(ids) == 1  # one cell output, updated in place
    final = shown[-1]["content"]["data"]["text/plain"]
    assert final.startswith("automl done: finished in") and "logistic_regression" in final
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors, "\n".join(f"{e['ename']}: {e['evalue']}\n" + "\n".join(e["traceback"]) for e in errors)
