"""Layers import in one direction (issue 18.5): api -> services -> models, auth below the
services (pure: hashing, tokens, the password policy), and no product module importing the
fake upstream (a tool of tests, bench and scripts). Read from each module's syntax tree, so
an import inside a function counts as much as one at the top."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("api", "auth", "services", "models")
ENTRY_POINTS = ("main.py", "config.py", "config_groups.py", "serve.py", "worker.py", "manage.py")


def _modules(*places: str) -> list[Path]:
    out: list[Path] = []
    for place in places:
        path = ROOT / place
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def _imports(path: Path) -> set[str]:
    """The absolute module names a file imports (relative imports are not used here)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _offenders(places: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in _modules(*places):
        bad = sorted(
            n
            for n in _imports(path)
            if n.split(".")[0] in forbidden or n in forbidden or any(n.startswith(f + ".") for f in forbidden)
        )
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


@pytest.mark.parametrize(
    "places, forbidden",
    [
        (("auth",), ("services", "api", "main", "serve", "manage", "worker")),
        (("models",), ("services", "api", "auth", "main")),
        (("services",), ("api", "main", "serve", "manage", "worker")),
        (PRODUCT + ENTRY_POINTS, ("fakeupstream",)),
        (("services/providers",), ("services.db", "services.generations", "models.db")),
        (("services/db.py", "models/db.py"), ("services.providers",)),
    ],
)
def test_imports_point_down_only(places: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    assert _offenders(places, forbidden) == {}


def test_the_checker_sees_imports_in_function_bodies(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from services.errors import NotFound\n    import api.deps\n")
    assert _imports(module) == {"services.errors", "api.deps"}
