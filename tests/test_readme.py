from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    test_command = next(line for line in readme.splitlines() if line.endswith("python -m pytest"))
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_demo_data_is_bundled():
    readme = (ROOT / "README.md").read_text()
    assert "benchmarks/data/penguins.csv.gz --target species" in readme
    assert (ROOT / "benchmarks" / "data" / "penguins.csv.gz").is_file()
