"""Test matrix: lint, everything together, each plugin alone with the core, core with all plugins, the example.

`nox -l` lists the sessions. Every install is constrained by constraints.txt (torch pinned to the CPU wheel).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())
EXAMPLE = "examples/recap-extractor-example"
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session, *targets: str) -> None:
    session.install(*CONSTRAINTS, "torch==2.13.0")
    session.install(*CONSTRAINTS, "-e", ".[test]", *targets)


def _pytest(session: nox.Session, *paths: str) -> None:
    session.run("python", "-m", "pytest", "-q", *paths, *session.posargs, env={"MUJOCO_GL": "egl"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree, then the import contracts in .importlinter."""
    session.install(*CONSTRAINTS, "ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # import-linter reads the sources without importing them: the package needs to be findable, not installed
    session.run("lint-imports", env={"PYTHONPATH": str(ROOT / "src")})


@nox.session
def tests(session: nox.Session) -> None:
    """Core and every plugin installed together; all test suites."""
    _install(session, *[a for p in PLUGINS for a in ("-e", f"plugins/{p}")])
    _pytest(session, "tests", *[f"plugins/{p}/tests" for p in PLUGINS])


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugin(session: nox.Session, plugin: str) -> None:
    """The core plus one plugin alone: its tests and an import check."""
    _install(session, "-e", f"plugins/{plugin}")
    package = plugin.replace("-", "_")
    session.run("python", "-c", f"import {package}.plugin")
    _pytest(session, f"plugins/{plugin}/tests")


@nox.session
def core_with_all_plugins(session: nox.Session) -> None:
    """The core's own tests re-run with every plugin installed (and entry points present)."""
    _install(session, *[a for p in PLUGINS for a in ("-e", f"plugins/{p}")])
    _pytest(session, "tests")
    session.run("recap", "plugins")


@nox.session
def example_plugin(session: nox.Session) -> None:
    """Install the example third-party extractor non-editable and use it by name, as a user would."""
    _install(session, *[a for p in PLUGINS for a in ("-e", f"plugins/{p}")])
    session.install(*CONSTRAINTS, EXAMPLE)
    session.run("python", f"{EXAMPLE}/check_installed.py")
    _pytest(session, f"{EXAMPLE}/tests")
