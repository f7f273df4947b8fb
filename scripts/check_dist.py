"""Check what `make dist` built: the sdist and wheel hold the whole app and nothing else.

    python scripts/check_dist.py [DIST_DIR] [--source CHECKOUT]

The wheel must hold every file of the app's source tree (modules, migrations, templates,
static files, ``py.typed``), at the version written in ``configcat_segment/__init__.py``, and
nothing from the demo project, the tests or the benchmarks; the sdist the same, plus what a
release needs beside it (README, CHANGELOG, LICENSE, pyproject.toml). It compares against
the source tree rather than a list of names, so moving modules inside the app needs no
change here. Prints one line per problem and exits 1, or prints a summary and exits 0.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

PACKAGE = "configcat_segment"
DISTRIBUTION = "configcat_segment"  # the normalised name in file names
SDIST_EXTRAS = ("README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "PKG-INFO")
REQUIRED_KINDS: dict[str, Callable[[str], bool]] = {
    "py.typed": lambda p: p == f"{PACKAGE}/py.typed",
    "migration": lambda p: p.startswith(f"{PACKAGE}/migrations/0") and p.endswith(".py"),
    "template": lambda p: p.startswith(f"{PACKAGE}/templates/") and p.endswith(".html"),
    "static file": lambda p: p.startswith(f"{PACKAGE}/static/"),
    "management command": lambda p: p.startswith(f"{PACKAGE}/management/commands/"),
}
NEVER_SHIPPED = ("project/", "tests/", "benchmarks/", "docs/", "scripts/", "templates/")
REQUIREMENTS = ("Django", "djangorestframework", "configcat-client", "segment-analytics-python")


def source_version(checkout: Path) -> str:
    """``__version__`` as written in ``version.py``, read without importing the package."""
    tree = ast.parse((checkout / PACKAGE / "version.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise SystemExit(f"{PACKAGE}/version.py: no __version__ = '...' assignment")


def source_files(checkout: Path) -> set[str]:
    """The app's files in the checkout, as paths relative to it (no bytecode)."""
    return {
        path.relative_to(checkout).as_posix()
        for path in (checkout / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def check_members(kind: str, names: set[str], expected: set[str]) -> list[str]:
    problems = [f"{kind}: missing {name}" for name in sorted(expected - names)]
    problems += [
        f"{kind}: has no {what}"
        for what, matches in REQUIRED_KINDS.items()
        if not any(matches(name) for name in names)
    ]
    problems += [
        f"{kind}: should not contain {name}"
        for name in sorted(names)
        if name.startswith(NEVER_SHIPPED) or "__pycache__" in name or name.endswith(".pyc")
    ]
    return problems


def check_wheel(wheel: Path, expected: set[str], version: str) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = {name for name in archive.namelist() if not name.endswith("/")}
        dist_info = f"{DISTRIBUTION}-{version}.dist-info"
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    problems = check_members(wheel.name, names, expected)
    problems += [
        f"{wheel.name}: unexpected {name}"
        for name in sorted(names)
        if not name.startswith((f"{PACKAGE}/", f"{dist_info}/"))
    ]
    if f"\nVersion: {version}\n" not in metadata:
        problems.append(f"{wheel.name}: METADATA does not say Version: {version}")
    problems += [
        f"{wheel.name}: METADATA does not require {requirement}"
        for requirement in REQUIREMENTS
        if f"Requires-Dist: {requirement}" not in metadata
    ]
    return problems


def check_sdist(sdist: Path, expected: set[str], version: str) -> list[str]:
    root = f"{DISTRIBUTION}-{version}"
    with tarfile.open(sdist) as archive:
        members = [m.name for m in archive.getmembers() if m.isfile()]
    names = {
        str(PurePosixPath(name).relative_to(root))
        for name in members
        if name.startswith(f"{root}/")
    }
    problems = [
        f"{sdist.name}: {name} is outside {root}/"
        for name in members
        if not name.startswith(f"{root}/")
    ]
    problems += check_members(sdist.name, names, expected)
    problems += [f"{sdist.name}: missing {name}" for name in SDIST_EXTRAS if name not in names]
    return problems


def only(paths: Iterable[Path], what: str) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise SystemExit(f"expected one {what}, found {[p.name for p in found] or 'none'}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", nargs="?", default="dist", type=Path)
    parser.add_argument("--source", default=Path(__file__).resolve().parent.parent, type=Path)
    args = parser.parse_args(argv)
    version = source_version(args.source)
    expected = source_files(args.source)
    wheel = only(args.dist.glob(f"{DISTRIBUTION}-{version}-*.whl"), f"wheel of {version}")
    sdist = only(args.dist.glob(f"{DISTRIBUTION}-{version}.tar.gz"), f"sdist of {version}")
    problems = check_wheel(wheel, expected, version) + check_sdist(sdist, expected, version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{wheel.name} and {sdist.name}: the app's {len(expected)} files, nothing else")
    return 0


if __name__ == "__main__":
    sys.exit(main())
