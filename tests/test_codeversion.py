"""The code hash that decides which jobs rerun after an edit (fast tier)."""

import shutil

import pytest
from conftest import REPO

from mnist_mlp import codeversion


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A copy of the package and the rule scripts, to edit."""
    shutil.copytree(REPO / "workflow" / "mnist_mlp", tmp_path / "mnist_mlp")
    shutil.copytree(REPO / "workflow" / "scripts", tmp_path / "scripts")
    monkeypatch.setattr(codeversion, "PACKAGE_DIR", tmp_path / "mnist_mlp")
    codeversion._parsed.cache_clear()
    codeversion.code_version.cache_clear()
    yield tmp_path
    codeversion._parsed.cache_clear()
    codeversion.code_version.cache_clear()


def version(package, script):
    codeversion._parsed.cache_clear()
    codeversion.code_version.cache_clear()
    return codeversion.code_version(package / "scripts" / script)


def test_each_rule_script_imports_the_modules_it_runs():
    scripts = REPO / "workflow" / "scripts"
    modules = {path.stem: codeversion.package_modules(path) for path in scripts.glob("*.py")}
    assert {"search", "training", "model", "data", "trials", "io", "jobs"} <= set(
        modules["cross_validate"]
    )
    assert {"final", "training", "model"} <= set(modules["retrain"])
    assert "figures" not in modules["cross_validate"] and "training" not in modules["rank_trials"]
    assert "torch" not in str(modules["select_winner"]) and "model" not in modules["select_winner"]
    assert "figures" in modules["plot_gradient_ascent"]


def test_comments_blank_lines_formatting_and_docstrings_do_not_count(package):
    before = version(package, "cross_validate.py")
    module = package / "mnist_mlp" / "training.py"
    source = module.read_text()
    edited = source.replace('"""The one training routine', '"""Reworded: the training routine')
    edited = edited.replace("\n\n\nclass ", "\n\n\n# a new comment\n\n\nclass ", 1)
    edited = edited.replace("VALID_FRACTION = 0.2", "VALID_FRACTION = (0.2)  # why")
    assert edited != source
    module.write_text(edited)
    assert version(package, "cross_validate.py") == before


def test_a_real_change_of_an_imported_module_changes_only_its_users(package):
    cv, rank = version(package, "cross_validate.py"), version(package, "rank_trials.py")
    module = package / "mnist_mlp" / "training.py"
    module.write_text(module.read_text().replace("VALID_FRACTION = 0.2", "VALID_FRACTION = 0.25"))
    assert version(package, "cross_validate.py") != cv
    assert version(package, "rank_trials.py") == rank  # ranking does not import training


def test_a_real_change_of_the_script_changes_its_hash(package):
    before = version(package, "rank_trials.py")
    script = package / "scripts" / "rank_trials.py"
    script.write_text(script.read_text() + "\nprint('ranked')\n")
    assert version(package, "rank_trials.py") != before


def _top_level_imports(path):
    """Names of the packages a module imports when it is imported (not inside functions)."""
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_snakefile_needs_only_what_snakemake_brings():
    """Planning a run (the Snakefile and what it imports from the package) needs only the
    standard library, PyYAML and jsonschema, which Snakemake installs: so a Snakemake-only
    environment (--software-deployment-method conda) can run the workflow."""
    import re
    import sys

    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    imported = set()
    for source in sources:
        imported |= set(re.findall(r"^from mnist_mlp\.(\w+) import", source.read_text(), re.M))
    package = REPO / "workflow" / "mnist_mlp"
    modules, pending = set(), set(imported)
    while pending:  # what they import in turn
        module = pending.pop()
        modules.add(module)
        pending |= set(codeversion._parsed(package / f"{module}.py")[1]) - modules
    assert {"config", "trials", "codeversion", "io", "report"} <= modules
    allowed = set(sys.stdlib_module_names) | {"yaml", "jsonschema", "mnist_mlp", "__future__"}
    for module in sorted(modules | {"__init__"}):
        outside = _top_level_imports(package / f"{module}.py") - allowed
        assert not outside, f"mnist_mlp/{module}.py imports {outside} when the Snakefile plans"
