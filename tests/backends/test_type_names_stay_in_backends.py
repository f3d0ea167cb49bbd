"""No module outside ``reconciler/backends/`` and ``reconciler/sandbox/`` names a backend type or imports a
backend's package: everything type-specific is asked of the registry (issue 18). Checked on the syntax tree:
imports, and string literals other than docstrings (documentation may name the products)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.backends import registry

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
ALLOWED = (PACKAGE / "backends", PACKAGE / "sandbox")
TYPES = tuple(d.type for d in registry.BUILT_IN)
BACKEND_PACKAGES = tuple(sorted(p.name for p in (PACKAGE / "backends").iterdir() if (p / "__init__.py").is_file()))
NAMED = re.compile(r"(?<![\w-])(" + "|".join(re.escape(t) for t in TYPES) + r")(?![\w-])")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not any(p.is_relative_to(a) for a in ALLOWED))


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of the module, classes and functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def offences(path: Path) -> list[str]:
    """``FILE:LINE: what`` for each import of a backend package and each backend type named, in line order."""
    where = str(path.relative_to(PACKAGE.parent)) if path.is_relative_to(PACKAGE.parent) else path.name
    found = sorted(_offences(path), key=lambda item: item[0])
    return [f"{where}:{line}: {what}" for line, what in found]


def _offences(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = docstrings(tree)
    backend_modules = tuple(f"reconciler.{layer}.{name}" for layer in ("backends", "sandbox")
                            for name in BACKEND_PACKAGES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            names = []
        for name in names:
            if name.startswith(backend_modules) and name.split(".")[2] in BACKEND_PACKAGES:
                yield node.lineno, f"imports {name}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for match in NAMED.finditer(node.value):
                yield node.lineno, f"names backend type {match[1]!r}"


def test_the_check_sees_the_built_in_types_and_packages() -> None:
    """The lists it checks against are not empty (a check against nothing would pass anything)."""
    assert TYPES == ("yateota", "iot-campaigns", "ogangi", "sms-gateway")
    assert BACKEND_PACKAGES == ("iot_campaigns", "ogangi", "sms_gateway", "yateota")
    assert len(modules()) > 50


def test_the_check_finds_a_type_name_and_a_backend_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Docs may name sms-gateway."""\nfrom reconciler.backends.ogangi import adapter\n'
                      'KIND = "iot-campaigns"\nURL = f"/webhooks/yateota/{1}"\n')
    found = [line.split(": ", 1)[1] for line in offences(sample)]
    assert found == ["imports reconciler.backends.ogangi", "imports reconciler.backends.ogangi.adapter",
                     "names backend type 'iot-campaigns'", "names backend type 'yateota'"]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_backends_and_sandbox_names_a_backend_type(path: Path) -> None:
    assert offences(path) == []
