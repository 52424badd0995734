"""Packaging: dependencies named once, the README's commands and paths are real."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {d for d in env["dependencies"] if isinstance(d, str)}
    conda -= {d for d in conda if d.split("=")[0] in ("python", "pip")}
    assert conda == wanted
    pip = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip == [{"pip": ["-e ."]}]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_readme_points_only_inside_the_repository():
    """Every file or folder the README names exists in the repository (the architecture
    document included); nothing points to a folder outside it."""
    readme = (ROOT / "README.md").read_text()
    assert "docs/ARCHITECTURE.md" in readme and (ROOT / "docs" / "ARCHITECTURE.md").is_file()
    named = set(re.findall(r"`([A-Za-z_][\w.-]*/[\w./-]*)`", readme))
    named |= set(re.findall(r"\]\(([^)#:]+)\)", readme))          # markdown links
    paths = {n for n in named if not n.startswith((".venv/", "data/results"))}
    # a path is named from the root, or inside the package (`kernel/`, `drivers/membdev.py`)
    missing = sorted(p for p in paths if not any((base / p).exists()
                                                 for base in (ROOT, ROOT / "redleaf_nb")))
    assert not missing, f"README.md names paths that are not in the repository: {missing}"
    assert "shared folder" not in readme
