"""Result versions: which results each stage computes, as a number that changes only when they do.

Every rule passes its stage's version as a param (``version``), so Snakemake reruns a stage's
jobs, and what depends on them, exactly when its version is bumped: never for a refactor, a
rename, a comment or a ``git checkout``. A change that alters what a stage computes (other
bytes in one of its outputs from the same inputs and config) must bump that stage's version in
the same commit. ``python -m mnist_mlp.guard`` keeps this honest (README, "Only what changed
reruns"): it computes a tiny protocol with this code and with the code of the commit where each
stage's version last changed, and requires the same bytes from every stage whose version did
not change.

Standard library only: the Snakefile reads it when it plans a run.
"""

from __future__ import annotations

import ast

# One entry per rule that writes results, named as the rule. Bump a stage's number when a change
# alters its outputs, and only then.
RESULT_VERSIONS = {
    "download_mnist": 1,
    "split_train_test": 1,
    "sample_trials": 1,
    "propose_trials": 1,
    "cross_validate": 1,
    "train_rung": 1,
    "promote_trials": 3,  # 2: the best third of every trial at the rung, complete ones too;
    # 3: planned from the rung before's table as an input (2's could miss a promoted trial)
    "rank_trials": 1,
    "export_study": 1,
    "retrain": 1,
    "select_winner": 1,
    "build_ensemble": 2,  # 2: the ensemble against the winner, paired (McNemar)
    "export_models": 2,  # 2: no source locations (paths, line numbers) in the programs
    "export_tracking": 1,
    "report_tables": 4,  # 2: intervals, the ensemble, the runner-up; the config's order;
    # 3: the ensemble against the winner; 4: the rungs' note, the rule of promote_trials 2
    "plot_search": 2,  # 2: pruned trials and their rungs, batch_size where drawn
    "plot_receptive_fields": 2,  # 2: one colour scale per figure, with its colour bar
    "plot_gradient_ascent": 2,  # 2: the regularised ascent beside the lab's; labelled values
    "plot_learning_curves": 3,  # 2: a zoomed overview, one panel per trial, integer epochs;
    # 3: a 10-epoch running mean over the faint raw curves, labels kept apart
    "plot_importance": 2,  # 2: the best in red, a tick per power of ten
}

# Version 1 of every stage is what the code of this commit computes: the commit of the published
# full run (docs/full_run), made before result versions existed. The guard compares with it
# until a stage's version is bumped.
VERSION_1_COMMIT = "997ddb903b674d45f8a501f1ca9901665e9ea30e"

# Before result versions, each rule passed a hash of its code as its param ("code"); these are
# the hashes of VERSION_1_COMMIT's code (Python 3.11), which every release up to 079220f shares.
# A record that carries one holds version 1's results: ``python -m mnist_mlp.records upgrade``
# (and a restore of a saved run) turns it into a record of version 1, so that such a run is
# kept instead of recomputed.
LEGACY_CODE_HASHES = {
    "download_mnist": "831df6cb8ee21c7c",
    "split_train_test": "6c130104c6b72b2a",
    "sample_trials": "963db00d07271c8a",
    "cross_validate": "d3184bf58f1885de",
    "rank_trials": "ac22866ee9a40d66",
    "retrain": "5b232cf8f7ea46ef",
    "select_winner": "ec26d1a2b17ac881",
    "report_tables": "be6e38debc1cb2f3",
    "plot_search": "b53ddd97f7c3855a",
    "plot_receptive_fields": "76023370f59373b0",
    "plot_gradient_ascent": "731f1a74202ead0b",
    "plot_learning_curves": "be9a9d5daa4ac731",
}


def version_param(number: int) -> str:
    return f"v{number}"


def result_version(stage: str) -> str:
    """The ``version`` param of ``stage``'s rule, e.g. "v1"."""
    try:
        return version_param(RESULT_VERSIONS[stage])
    except KeyError:
        raise KeyError(
            f"stage {stage!r} has no result version: add it to RESULT_VERSIONS in {__file__}"
        ) from None


def legacy_upgrade(stage: str, params: list[str]) -> list[str] | None:
    """A record's params (Snakemake stores each param's ``repr``, sorted) as this release's
    rules pass them for the same results, or None when there is nothing to upgrade (made by
    other code, or upgraded already). Two changes of form are known:

    - the code hash of version 1 (before result versions) becomes the ``version`` param of
      version 1 (a stage bumped since then still reruns: "v1" is not its version);
    - sample_trials's search space in the keys of earlier releases (``log10_lr``, ...) becomes
      ``search.space`` in its canonical form, which draws the same trials.
    """
    upgraded = list(params)
    legacy = repr(LEGACY_CODE_HASHES.get(stage))
    upgraded = [repr(version_param(1)) if p == legacy else p for p in upgraded]
    if stage == "sample_trials":
        upgraded = [_space_param(p) for p in upgraded]
    return sorted(upgraded) if upgraded != list(params) else None


def _space_param(param: str) -> str:
    from .trials import OLD_SEARCH_KEYS, space_from_old

    try:
        value = ast.literal_eval(param)
    except (ValueError, SyntaxError):
        return param
    if isinstance(value, dict) and "log10_lr" in value and set(value) <= set(OLD_SEARCH_KEYS):
        return repr(space_from_old(value))
    return param
