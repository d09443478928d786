"""Static checks of the Dockerfile and .dockerignore (no image registry is reachable here to
build it in the test suite)."""

from __future__ import annotations

import re
import tomllib

from tests.deploy.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def test_base_image_is_python_312_slim() -> None:
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in INSTRUCTIONS
    froms = [i for i in INSTRUCTIONS if i.startswith("FROM ")]
    assert froms and all(i.startswith("FROM ${PYTHON_IMAGE}") for i in froms)


def test_runs_as_numeric_non_root_user() -> None:
    users = [i.split()[1] for i in INSTRUCTIONS if i.startswith("USER ")]
    assert users[-1] == "10001:10001"
    last_from = max(n for n, i in enumerate(INSTRUCTIONS) if i.startswith("FROM "))
    assert any(i.startswith("USER ") for i in INSTRUCTIONS[last_from:])


def test_installs_the_project_with_pip() -> None:
    assert any("pip install -c requirements.lock ." in i for i in INSTRUCTIONS), "pinned deps"
    assert any("pip install --no-deps -c requirements.lock ." in i for i in INSTRUCTIONS)
    assert any(i.startswith("CMD ") and "services.replay" in i for i in INSTRUCTIONS)
    assert "EXPOSE 9100 2101" in INSTRUCTIONS


def _glob_regex(glob: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out += ".*"
            i += 2
        elif glob[i] == "*":
            out += "[^/]*"
            i += 1
        elif glob[i] == "?":
            out += "[^/]"
            i += 1
        elif glob[i] == "[":
            close = glob.index("]", i)
            out += glob[i : close + 1]
            i = close + 1
        else:
            out += re.escape(glob[i])
            i += 1
    return re.compile(out + r"\Z")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules: the last matching pattern wins, `!` re-includes, and a
    pattern matching a parent directory matches everything below it."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex(pattern[1:] if negate else pattern)
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_needs() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [p.rstrip("*") for p in include]
    needed = [
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "NOTICE",
        "deploy/docker/dataflow-entrypoint.sh",
        "data/marketdata/README.md",
        *(f"{p}/__init__.py" for p in packages),
    ]
    for path in needed:
        assert not _ignored(path, patterns), f".dockerignore drops {path}"
    for path in (
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        ".cache/x",
        "deploy/kustomize/base/kustomization.yaml",
        "stockstream/__pycache__/x.pyc",
        "services/__pycache__/m.cpython-312.opt-1.txt",
    ):
        assert _ignored(path, patterns), f".dockerignore keeps {path}"
