"""Protection gaps: threat per cell from its reasons, the allowed gap, ranking, exposure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geo.gaps import GapPolicy, ThreatReason, find_gaps, site_exposure, threat_cells

HOUR = 3600.0
NOW = 1_000 * HOUR
NEVER = float("nan")


def test_each_reason_adds_its_weight_once_per_cell():
    t = threat_cells(
        hot_cells=[1, 1, 2],
        hot_confidence=[2, 1, 3],
        emerging_cells=[2, 2],
        surge_cells=[3],
        precursor_cells=[3, 4],
        flash_cells=[4, 4, 4],
    )
    assert t.cells.tolist() == [1, 2, 3, 4]
    # 1: hot 95 % (the best of its two pictures); 2: hot 99 % + emerging (counted once);
    # 3: surge + precursor; 4: precursor + flash (three flash incidents, one reason).
    assert t.threat.tolist() == [2.0, 4.0, 4.0, 5.0]
    assert [ThreatReason.names_of(int(m)) for m in t.reasons] == [
        ["hot"],
        ["hot", "emerging"],
        ["surge", "precursor"],
        ["precursor", "flash"],
    ]
    assert t.exposure.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_cold_and_insignificant_classes_are_not_threats():
    t = threat_cells(hot_cells=[1, 2, 3], hot_confidence=[0, -3, 1])
    assert t.cells.tolist() == [3]


@pytest.mark.parametrize(
    ("population", "exposure"),
    [(0, 0.0), (900, 1.0), (9_900, 2.0), (NEVER, 1.0)],
    ids=["empty", "900", "9900", "unknown"],
)
def test_site_exposure_is_log_of_population(population, exposure):
    assert site_exposure([population])[0] == pytest.approx(exposure)


def test_every_site_in_a_cell_adds_its_exposure():
    t = threat_cells(site_cells=[5, 5, 6], site_population=[9_900, 900, NEVER])
    assert t.exposure.tolist() == pytest.approx([1 + 2.0 + 1.0, 2.0])
    assert t.threat.tolist() == [1.0, 1.0]  # the site reason counts once
    assert t.has_site.all()


@pytest.mark.parametrize(
    ("threat", "allowed"),
    [(1.0, 168.0), (2.0, 84.0), (4.0, 42.0), (14.0, 12.0), (20.0, 12.0)],
    ids=["T1", "T2", "T4", "T14-floor", "T20-floor"],
)
def test_the_allowed_gap_shrinks_with_threat_down_to_the_floor(threat, allowed):
    policy = GapPolicy(emerging_weight=threat)
    t = threat_cells(emerging_cells=[1], policy=policy)
    gaps = find_gaps(t, [NEVER], NOW, policy)
    assert gaps.allowed_hours.tolist() == [allowed]


def test_a_protected_site_halves_the_allowed_gap():
    t = threat_cells(hot_cells=[1, 2], hot_confidence=[2, 2], site_cells=[2], site_population=[0])
    gaps = find_gaps(t, [NOW - 70 * HOUR, NOW - 70 * HOUR], NOW)
    # Cell 1: threat 2 → 84 h allowed, 70 h uncovered: no gap. Cell 2: threat 3 → 56 h, halved
    # to 28 h by the site: a gap.
    assert gaps.cells.tolist() == [2]
    assert gaps.allowed_hours.tolist() == [28.0]
    assert gaps.hours_uncovered.tolist() == pytest.approx([70.0])


def test_gaps_are_ranked_by_threat_times_hours_times_exposure():
    t = threat_cells(
        hot_cells=[1, 2, 3],
        hot_confidence=[3, 1, 2],
        site_cells=[3],
        site_population=[9_900],
    )
    last = [NOW - 100 * HOUR, NOW - 500 * HOUR, NOW - 200 * HOUR]
    gaps = find_gaps(t, last, NOW)
    scores = {1: 3 * 100, 2: 1 * 500, 3: (2 + 1) * 200 * 3.0}
    assert gaps.cells.tolist() == [3, 2, 1]
    assert gaps.score.tolist() == pytest.approx([scores[3], scores[2], scores[1]])
    assert gaps.last_presence_s.tolist() == [last[2], last[1], last[0]]


def test_a_cell_never_visited_counts_as_the_cap_and_old_visits_are_capped():
    t = threat_cells(hot_cells=[1, 2], hot_confidence=[1, 1])
    gaps = find_gaps(t, [NEVER, NOW - 5000 * HOUR], NOW)
    assert gaps.hours_uncovered.tolist() == [720.0, 720.0]
    assert gaps.cells.tolist() == [1, 2]
    assert math.isnan(gaps.last_presence_s[0])
    assert gaps.last_presence_s[1] == NOW - 5000 * HOUR
    assert gaps.take([1]).cells.tolist() == [2]


def test_a_presence_after_now_means_covered():
    t = threat_cells(flash_cells=[1])
    gaps = find_gaps(t, [NOW + HOUR], NOW)
    assert len(gaps) == 0


def test_ties_in_score_are_ordered_by_cell():
    t = threat_cells(hot_cells=[9, 3, 5], hot_confidence=[1, 1, 1])
    gaps = find_gaps(t, [NEVER, NEVER, NEVER], NOW)
    assert gaps.cells.tolist() == [3, 5, 9]


def test_unknown_reasons_are_refused_by_name():
    assert ThreatReason.parse("surge") is ThreatReason.SURGE
    with pytest.raises(ValueError, match="unknown threat 'bad'"):
        ThreatReason.parse("bad")


def test_a_policy_refuses_inconsistent_limits():
    with pytest.raises(ValueError, match="min_allowed_hours"):
        GapPolicy(min_allowed_hours=200)
    with pytest.raises(ValueError, match="site_allowed_factor"):
        GapPolicy(site_allowed_factor=0)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        threat_cells(hot_cells=[1, 2], hot_confidence=[1])
    t = threat_cells(hot_cells=[1], hot_confidence=[1])
    with pytest.raises(ValueError, match="one entry per"):
        find_gaps(t, np.zeros(2), NOW)
