"""Choosing the winner (mnist_mlp.winner, fast tier): who wins, who never does."""

import numpy as np
import pandas as pd
import pytest

from mnist_mlp.errors import UserFacingError
from mnist_mlp.winner import candidates_table, select_winner


def _candidates(rows):
    return pd.DataFrame(rows, columns=["trial", "reference", "status", "test_accuracy", "cv_loss"])


def test_the_best_test_accuracy_wins_and_ties_go_to_the_lower_cv_loss():
    table = select_winner(
        _candidates(
            [
                ("t0001", False, "ok", 0.97, 0.10),
                ("t0002", False, "ok", 0.98, 0.12),
                ("t0003", False, "ok", 0.98, 0.09),
                ("t0004", False, "ok", 0.96, 0.05),
            ]
        )
    )
    assert table.loc[table["winner"], "trial"].tolist() == ["t0003"]
    assert table["trial"].tolist() == ["t0003", "t0002", "t0001", "t0004"]


def test_references_and_diverged_fits_never_win():
    table = select_winner(
        _candidates(
            [
                ("ref_report_winner", True, "ok", 0.999, np.nan),
                ("t0005", False, "diverged", np.nan, np.nan),
                ("t0006", False, "ok", 0.90, 0.30),
            ]
        )
    )
    assert table.loc[table["winner"], "trial"].tolist() == ["t0006"]
    with pytest.raises(UserFacingError, match="no retrained trial can win"):
        select_winner(_candidates([("ref_a", True, "ok", 0.99, np.nan)]))


def test_with_every_trial_diverged_and_no_reference_the_message_says_so():
    """Nothing is retrained then: select_winner gets no metrics at all."""
    ranking = pd.DataFrame({"trial": ["t0000"], "mean_loss": [np.nan]})
    with pytest.raises(UserFacingError, match="no retrained trial can win"):
        select_winner(candidates_table({}, ranking))
