"""What a rule's jobs run, as one content hash: its script and every module of this package the
script imports, directly or not.

Snakemake's own code trigger reruns a script rule whenever the script's modification time is
newer than the outputs (a ``touch``, a ``git checkout``, a comment) and never when a module the
script imports changes. The workflow turns that trigger off (``profiles/default``) and passes
this hash as a param instead, so a rule's jobs rerun exactly when the code they run changes.
Comments, blank lines, formatting and docstrings do not count: the hash is taken over the
source as ``ast.unparse`` writes it back, docstrings removed.

Standard library only: the Snakefile computes it when it plans a run.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "mnist_mlp"
PACKAGE_DIR = Path(__file__).resolve().parent


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def _parsed(path: Path) -> tuple[str, frozenset[str]]:
    """(normalised source, names of this package's modules it imports) of one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    in_package = path.parent == PACKAGE_DIR
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and in_package:  # from .x import y / from . import x
                base = f"{PACKAGE}.{node.module}" if node.module else PACKAGE
            elif node.level:
                continue
            else:
                base = node.module or ""
            # "from pkg import name": name may be a module of pkg
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1:
                module = parts[1]
                if (PACKAGE_DIR / f"{module}.py").is_file():
                    imported.add(module)
    return ast.unparse(_without_docstrings(tree)), frozenset(imported)


def package_modules(script: str | Path) -> list[str]:
    """The modules of this package that ``script`` imports, directly or through each other."""
    _, pending = _parsed(Path(script).resolve())
    seen: set[str] = set()
    pending = set(pending)
    while pending:
        module = pending.pop()
        seen.add(module)
        pending |= _parsed(PACKAGE_DIR / f"{module}.py")[1] - seen
    return sorted(seen)


@cache
def code_version(script: str | Path) -> str:
    """A short hash of ``script`` and the package modules it imports (``__init__`` included),
    normalised so that only a change of what the code does changes it."""
    script = Path(script).resolve()
    digest = hashlib.sha256()
    files = [script, PACKAGE_DIR / "__init__.py"]
    files += [PACKAGE_DIR / f"{module}.py" for module in package_modules(script)]
    for path in files:
        name = path.name if path.parent == PACKAGE_DIR else "script"
        digest.update(f"{name}\0{_parsed(path)[0]}\0".encode())
    return digest.hexdigest()[:16]
