"""mutmut (requirements-dev.txt) for this layout: ``make mutants`` runs it as
``python tests/mutants.py run``; any mutmut command works (``results``, ``show NAME``, ...).

mutmut 3 names a mutant after its file's path from the repository root, dropping only a
leading ``src/``: ``workflow/mnist_mlp/ranking.py`` would give ``workflow.mnist_mlp.ranking``,
while the package is imported as ``mnist_mlp.ranking`` (pytest's pythonpath is workflow/), so no
test would ever be matched to a mutant. Here the ``workflow/`` prefix is dropped the same way.
"""

import sys
from pathlib import Path

import mutmut.__main__ as mutmut_main
import mutmut.mutation.file_mutation as file_mutation
from mutmut.utils import format_utils

PACKAGE_ROOT = "workflow"


def mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
    path = Path(relative_source_path)
    if path.parts[:1] == (PACKAGE_ROOT,):
        path = Path(*path.parts[1:])
    return format_utils.get_mutant_name(path, mutant_method_name)


mutmut_main.get_mutant_name = mutant_name
file_mutation.get_mutant_name = mutant_name

if __name__ == "__main__":
    sys.exit(mutmut_main.cli())
