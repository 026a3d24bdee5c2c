"""Early warning: the Poisson surge test against a cell's own past, and the precursor index."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from geo.early_warning import precursor_flag, precursor_index, surge


@pytest.mark.parametrize(
    ("count", "history"),
    [
        (1, [0, 0, 0, 0]),
        (3, [0, 1, 0, 0]),
        (7, [2, 3, 1, 4]),
        (40, [20, 25, 18, 30]),
        (2, []),
        (12, [0] * 12),
    ],
    ids=["one_vs_nothing", "three_vs_quiet", "seven_vs_moderate", "busy", "no_windows", "zeros"],
)
def test_surge_p_value_is_the_poisson_upper_tail(count: int, history: list[int]) -> None:
    baseline = np.array([history], dtype=np.float64).reshape(1, len(history))
    result = surge(np.array([count]), baseline, prior_rate=0.1)
    rate = (sum(history) + 0.1) / (len(history) + 1)
    assert result.baseline_rate[0] == pytest.approx(rate, rel=1e-12)
    assert result.p_value[0] == pytest.approx(stats.poisson.sf(count - 1, rate), rel=1e-9)
    expected_score = min(-np.log10(stats.poisson.sf(count - 1, rate)), 30.0)
    assert result.score[0] == pytest.approx(expected_score, rel=1e-9)


def test_quiet_cell_that_jumps_is_flagged_and_busy_cell_is_not() -> None:
    current = np.array([5, 14])
    baseline = np.array(
        [
            [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0],  # quiet village
            [12, 15, 11, 14, 13, 16, 12, 14, 15, 13, 12, 14],  # always busy town
        ]
    )
    result = surge(current, baseline)
    assert result.flagged.tolist() == [True, False]
    assert result.score[0] > 4.0 > result.score[1]
    assert result.current.tolist() == [5, 14]


def test_empty_history_stays_finite_and_one_incident_is_not_a_surge() -> None:
    current = np.array([0, 1, 3])
    for baseline in (np.zeros((3, 0)), np.zeros((3, 8))):
        result = surge(current, baseline, prior_rate=0.1)
        assert np.isfinite(result.baseline_rate).all() and (result.baseline_rate > 0).all()
        assert np.isfinite(result.score).all()
        assert (result.p_value > 0).all()
        assert result.p_value[0] == 1.0 and result.score[0] == 0.0
        # one incident where none was seen: improbable but below min_count
        assert result.flagged.tolist() == [False, False, True]


def test_surge_score_is_capped() -> None:
    result = surge(np.array([500]), np.zeros((1, 10)), max_score=30.0)
    assert result.score[0] == 30.0
    assert result.flagged[0]


def test_surge_thresholds_are_applied() -> None:
    current = np.array([3])
    baseline = np.array([[1, 0, 1, 0]])
    p = surge(current, baseline).p_value[0]
    assert surge(current, baseline, alpha=p * 1.01).flagged[0]
    assert not surge(current, baseline, alpha=p).flagged[0]  # strict p < alpha
    assert not surge(current, baseline, alpha=p * 1.01, min_count=4).flagged[0]


def test_surge_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="baseline"):
        surge(np.array([1, 2]), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        surge(np.array([-1]), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="prior_rate"):
        surge(np.array([1]), np.zeros((1, 4)), prior_rate=0.0)


# --- Precursor index ------------------------------------------------------------------------

# Categories: incitement, threats, armed-group movement, displacement (weights chosen by the
# caller, here threats and movement lead most).
WEIGHTS = np.array([1.0, 2.0, 2.0, 1.0])


def test_precursor_index_orders_cells_by_weighted_excess_over_their_own_baseline() -> None:
    current = np.array(
        [
            [0, 4, 2, 0],  # quiet village: threats and armed men appear
            [40, 10, 3, 6],  # busy town at its usual level
            [0, 2, 0, 0],  # quiet village: two threats
            [1, 0, 0, 0],  # one hate-speech report where none is usual
            [30, 12, 3, 6],  # busy town: threats up by a fifth
        ],
        dtype=np.float64,
    )
    baseline = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [40.0, 10.0, 3.0, 6.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [40.0, 10.0, 3.0, 6.0],
        ]
    )
    index = precursor_index(current, baseline, WEIGHTS)
    assert np.argsort(-index).tolist() == [0, 2, 3, 4, 1]
    assert index[1] == 0.0  # chronic level, however high, scores nothing
    # by hand: 2·log2(5) + 2·log2(3)
    assert index[0] == pytest.approx(2 * np.log2(5) + 2 * np.log2(3), rel=1e-12)


def test_precursor_index_a_fall_does_not_cancel_a_rise() -> None:
    baseline = np.array([[0.0, 1.0, 0.0, 8.0]])
    rise_only = precursor_index(np.array([[0, 3, 0, 8]]), baseline, WEIGHTS)
    rise_and_fall = precursor_index(np.array([[0, 3, 0, 0]]), baseline, WEIGHTS)
    assert rise_only[0] == pytest.approx(2.0)  # 2 · log2(4/2)
    assert rise_and_fall[0] == pytest.approx(rise_only[0])


def test_precursor_index_follows_the_caller_weights() -> None:
    current = np.array([[3.0, 0.0], [0.0, 3.0]])
    baseline = np.zeros((2, 2))
    assert precursor_index(current, baseline, [1.0, 0.0]).tolist() == [2.0, 0.0]
    assert precursor_index(current, baseline, [0.0, 1.0]).tolist() == [0.0, 2.0]
    # smoothing is the pseudo-count: log2((3 + 3) / (0 + 3)) = 1
    assert precursor_index(current, baseline, [1.0, 1.0], smoothing=3.0).tolist() == [1.0, 1.0]


def test_precursor_flag_is_inclusive_of_the_threshold() -> None:
    index = np.array([0.0, 1.999, 2.0, 5.0])
    assert precursor_flag(index, 2.0).tolist() == [False, False, True, True]


def test_precursor_index_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        precursor_index(np.zeros((2, 4)), np.zeros((2, 3)), WEIGHTS)
    with pytest.raises(ValueError, match="category_weights"):
        precursor_index(np.zeros((2, 4)), np.zeros((2, 4)), [1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        precursor_index(np.zeros((2, 4)), np.zeros((2, 4)), [1.0, -2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="smoothing"):
        precursor_index(np.zeros((2, 4)), np.zeros((2, 4)), WEIGHTS, smoothing=0.0)
