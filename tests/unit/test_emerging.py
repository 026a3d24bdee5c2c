"""Emerging hot spots: the space-time cube, Mann-Kendall, Gi* per bin, and the seventeen
categories — one golden series per category and one test per corner-case decision."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import special, stats

from geo.aggregate import aggregate
from geo.cells import grid_disks, index_points
from geo.emerging import (
    CATEGORIES,
    EmergingCategory,
    MannKendallResult,
    _gi_star_z_by_bin,
    classify,
    emerging_hotspots,
    mann_kendall,
    space_time_cube,
)
from geo.hotspots import gi_star_z
from geo.weights import KRingWeights, kring_weights

Cat = EmergingCategory

# ---------------------------------------------------------------------------------------------
# Hand-made z series: "H" a hot bin (z = +3, p = 0.0027), "C" a cold bin, "." not significant.


def pattern(text: str, level: float = 3.0) -> npt.NDArray[np.float64]:
    values = {"H": level, "C": -level, ".": 0.0}
    return np.array([values[ch] for ch in text], dtype=np.float64)


def two_sided_p(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(2.0 * special.ndtr(-np.abs(z)), dtype=np.float64)


def classify_rows(rows: list[npt.NDArray[np.float64]], **kwargs: float) -> list[Cat]:
    z = np.vstack(rows)
    codes = classify(z, two_sided_p(z), mann_kendall(z), **kwargs)
    return [Cat.from_code(int(c)) for c in codes]


def classify_one(row: npt.NDArray[np.float64], **kwargs: float) -> Cat:
    return classify_rows([row], **kwargs)[0]


RISING = np.linspace(2.0, 5.0, 10)
FALLING = RISING[::-1].copy()
STEADY = np.array([3.0, 3.5] * 5)  # MK S = 5, z ≈ 0.42: no trend

GOLDEN_HOT: dict[Cat, npt.NDArray[np.float64]] = {
    Cat.NEW_HOT: pattern(".........H"),
    Cat.CONSECUTIVE_HOT: pattern(".......HHH"),
    Cat.INTENSIFYING_HOT: RISING,
    Cat.PERSISTENT_HOT: STEADY,
    Cat.DIMINISHING_HOT: FALLING,
    Cat.SPORADIC_HOT: pattern("H..H...H.H"),
    Cat.OSCILLATING_HOT: pattern("C...H..C.H"),
    Cat.HISTORICAL_HOT: pattern("HHHHHHHHH."),
}
MIRROR = {
    Cat.NEW_HOT: Cat.NEW_COLD,
    Cat.CONSECUTIVE_HOT: Cat.CONSECUTIVE_COLD,
    Cat.INTENSIFYING_HOT: Cat.INTENSIFYING_COLD,
    Cat.PERSISTENT_HOT: Cat.PERSISTENT_COLD,
    Cat.DIMINISHING_HOT: Cat.DIMINISHING_COLD,
    Cat.SPORADIC_HOT: Cat.SPORADIC_COLD,
    Cat.OSCILLATING_HOT: Cat.OSCILLATING_COLD,
    Cat.HISTORICAL_HOT: Cat.HISTORICAL_COLD,
}
# The cold mirror of a series is its negation: hot ↔ cold, and a rising z becomes a falling one
# (an intensifying cold spot grows more negative).
GOLDEN: dict[Cat, npt.NDArray[np.float64]] = {
    **GOLDEN_HOT,
    **{MIRROR[cat]: -series for cat, series in GOLDEN_HOT.items()},
    Cat.NO_PATTERN: pattern(".........."),
}


def test_golden_series_cover_every_category() -> None:
    assert set(GOLDEN) == set(Cat)


@pytest.mark.parametrize(
    ("expected", "series"), list(GOLDEN.items()), ids=[c.value for c in GOLDEN]
)
def test_golden_series_land_in_their_category(
    expected: Cat, series: npt.NDArray[np.float64]
) -> None:
    assert classify_one(series) is expected


def test_golden_series_classified_together_match_one_by_one() -> None:
    # Vectorised over rows: each row's category must not depend on the others.
    assert classify_rows(list(GOLDEN.values())) == list(GOLDEN)


def test_golden_trends_are_what_the_categories_need() -> None:
    trend = mann_kendall(np.vstack([RISING, STEADY, FALLING]))
    assert trend.p_value[0] < 0.05 and trend.z[0] > 0
    assert trend.p_value[1] >= 0.05
    assert trend.p_value[2] < 0.05 and trend.z[2] < 0


# --- Decisions (a)–(d), each pinned ---------------------------------------------------------


def spread_hot(n_bins: int, n_hot: int) -> npt.NDArray[np.float64]:
    """``n_hot`` hot bins with the final bin hot and the quiet bins spread through the middle."""
    z = np.full(n_bins, 3.0)
    quiet = np.linspace(1, n_bins - 2, n_bins - n_hot).round().astype(int)
    z[quiet] = 0.0
    assert int((z > 0).sum()) == n_hot and z[-1] > 0
    return z


@pytest.mark.parametrize(
    ("n_bins", "n_hot", "expected"),
    [
        (10, 9, Cat.PERSISTENT_HOT),
        (20, 18, Cat.PERSISTENT_HOT),
        (52, 47, Cat.PERSISTENT_HOT),
        # floor(0.9 · 52) = 46 would call this 88.5 % "90 %"; the ratio does not.
        (52, 46, Cat.SPORADIC_HOT),
        (19, 17, Cat.SPORADIC_HOT),
        (10, 8, Cat.SPORADIC_HOT),
    ],
    ids=[
        "9_of_10_is_90_percent",
        "18_of_20_is_90_percent",
        "47_of_52_is_90_percent",
        "46_of_52_is_88_percent_not_floor_0.9n",
        "17_of_19_is_89_percent",
        "8_of_10_is_80_percent",
    ],
)
def test_ninety_percent_is_the_ratio_not_the_floor(n_bins: int, n_hot: int, expected: Cat) -> None:
    series = spread_hot(n_bins, n_hot)
    # Ties make the trend insignificant, so ≥ 90 % lands in persistent.
    assert mann_kendall(series).p_value[0] >= 0.05
    assert classify_one(series) is expected


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pattern("H" * 19 + "."), Cat.HISTORICAL_HOT),
        (pattern("H" * 9 + "." + "H" * 9 + "."), Cat.HISTORICAL_HOT),
        (np.r_[np.linspace(2.0, 5.0, 19), 0.0], Cat.HISTORICAL_HOT),
        (pattern("H" * 19 + "C"), Cat.OSCILLATING_COLD),
        (pattern("H" * 9 + "C"), Cat.OSCILLATING_COLD),
        (pattern("H" * 17 + "..."), Cat.NO_PATTERN),
    ],
    ids=[
        "mostly_hot_final_quiet_is_historical_not_persistent",
        "90_percent_with_gaps_final_quiet_is_historical",
        "rising_but_final_quiet_is_historical_not_intensifying",
        "mostly_hot_final_cold_is_oscillating_cold_current_status_wins",
        "nine_hot_then_cold_is_oscillating_cold_not_new_cold",
        "85_percent_final_quiet_is_no_pattern",
    ],
)
def test_the_final_bin_decides_the_family(series: npt.NDArray[np.float64], expected: Cat) -> None:
    assert classify_one(series) is expected


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pattern("C........H"), Cat.OSCILLATING_HOT),
        (pattern("C.....HHHH"), Cat.OSCILLATING_HOT),
        (pattern("H.......CC"), Cat.OSCILLATING_COLD),
        (pattern(".HHHHHHHHH"), Cat.PERSISTENT_HOT),
        (pattern("C" + "H" * 19), Cat.PERSISTENT_HOT),
        (pattern("H.......HH"), Cat.SPORADIC_HOT),
        (pattern("H........H"), Cat.SPORADIC_HOT),
        (pattern("........HH"), Cat.CONSECUTIVE_HOT),
        (pattern("..HHHHHHHH"), Cat.CONSECUTIVE_HOT),
        (pattern("H"), Cat.PERSISTENT_HOT),
    ],
    ids=[
        "cold_once_then_hot_only_now_is_oscillating_not_new",
        "cold_once_then_final_run_is_oscillating_not_consecutive",
        "hot_once_then_final_cold_run_is_oscillating_cold",
        "final_run_reaching_90_percent_is_persistent_not_consecutive",
        "95_percent_hot_with_one_cold_bin_is_persistent_not_oscillating",
        "final_run_after_an_earlier_hot_bin_is_sporadic",
        "final_hot_after_a_gap_is_sporadic_not_new",
        "two_final_hot_bins_are_consecutive",
        "eight_final_hot_bins_of_ten_are_consecutive",
        "single_bin_cube_hot_is_persistent",
    ],
)
def test_rule_order(series: npt.NDArray[np.float64], expected: Cat) -> None:
    assert classify_one(series) is expected


def test_intensifying_and_diminishing_need_a_significant_trend() -> None:
    rising = RISING
    assert classify_one(rising, trend_alpha=0.05) is Cat.INTENSIFYING_HOT
    trend_p = float(mann_kendall(rising).p_value[0])
    assert classify_one(rising, trend_alpha=trend_p) is Cat.PERSISTENT_HOT  # strict p < α


def test_bin_significance_is_two_sided_p_below_alpha_strictly() -> None:
    z = np.full((1, 10), 1.8)  # two-sided p ≈ 0.072
    trend = mann_kendall(z)
    p = two_sided_p(z)
    assert Cat.from_code(int(classify(z, p, trend, alpha=0.10)[0])) is Cat.PERSISTENT_HOT
    assert Cat.from_code(int(classify(z, p, trend, alpha=0.05)[0])) is Cat.NO_PATTERN
    exactly = np.full((1, 10), 0.10)
    assert Cat.from_code(int(classify(z, exactly, trend, alpha=0.10)[0])) is Cat.NO_PATTERN


def test_classify_uses_the_p_values_it_is_given() -> None:
    # A caller may pass FDR-adjusted p-values: classification follows p, with the sign of z.
    z = np.full((1, 10), 0.5)
    p = np.full((1, 10), 0.01)
    assert Cat.from_code(int(classify(z, p, mann_kendall(z))[0])) is Cat.PERSISTENT_HOT


def test_classify_rejects_mismatched_shapes() -> None:
    z = np.zeros((3, 10))
    with pytest.raises(ValueError, match="same shape"):
        classify(z, np.zeros((3, 9)), mann_kendall(z))
    with pytest.raises(ValueError, match="one result per row"):
        classify(z, np.ones((3, 10)), mann_kendall(np.zeros((2, 10))))


def test_category_codes_are_stable_and_mirror() -> None:
    assert [c.code for c in CATEGORIES] == list(range(17))
    assert Cat.NO_PATTERN.code == 0
    for hot, cold in MIRROR.items():
        assert cold.code == hot.code + 8
        assert cold.value == hot.value.replace("_hot", "_cold")
        assert Cat.from_code(hot.code) is hot


# --- Mann-Kendall ---------------------------------------------------------------------------


def brute_force_mk(x: npt.NDArray[np.float64]) -> tuple[int, float]:
    t = x.size
    s = sum(int(np.sign(x[j] - x[i])) for i in range(t) for j in range(i + 1, t))
    _, groups = np.unique(x, return_counts=True)
    ties = float(sum(g * (g - 1) * (2 * g + 5) for g in groups))
    return s, (t * (t - 1) * (2 * t + 5) - ties) / 18.0


def test_mann_kendall_by_hand_without_ties() -> None:
    # pairs of 1, 3, 2, 4: + + + − + +  → S = 4; Var = 4·3·13/18 = 26/3
    r = mann_kendall(np.array([[1.0, 3.0, 2.0, 4.0]]))
    assert int(r.s[0]) == 4
    assert r.variance[0] == pytest.approx(26.0 / 3.0, rel=1e-12)
    assert r.z[0] == pytest.approx(3.0 / np.sqrt(26.0 / 3.0), rel=1e-12)  # (S − 1)/√Var
    assert r.p_value[0] == pytest.approx(2.0 * stats.norm.sf(3.0 / np.sqrt(26.0 / 3.0)))
    assert r.tau[0] == pytest.approx(4.0 / 6.0)


def test_mann_kendall_by_hand_with_ties() -> None:
    # 1, 2, 2, 3: S = 5 (the tied pair counts 0); one tie group of 2 removes 2·1·9 = 18:
    # Var = (4·3·13 − 18)/18 = 138/18.
    r = mann_kendall(np.array([[1.0, 2.0, 2.0, 3.0]]))
    assert int(r.s[0]) == 5
    assert r.variance[0] == pytest.approx(138.0 / 18.0, rel=1e-12)
    assert r.z[0] == pytest.approx(4.0 / np.sqrt(138.0 / 18.0), rel=1e-12)
    # τ-b: 5 / √(6 · (6 − 1))
    assert r.tau[0] == pytest.approx(5.0 / np.sqrt(30.0), rel=1e-12)


def test_mann_kendall_continuity_correction_for_a_falling_series() -> None:
    r = mann_kendall(np.array([[4.0, 2.0, 3.0, 1.0]]))
    assert int(r.s[0]) == -4
    assert r.z[0] == pytest.approx(-3.0 / np.sqrt(26.0 / 3.0), rel=1e-12)  # (S + 1)/√Var


def test_mann_kendall_constant_series_has_no_trend() -> None:
    r = mann_kendall(np.full((2, 12), 0.1))
    assert r.s.tolist() == [0, 0]
    assert r.variance.tolist() == [0.0, 0.0]
    assert r.z.tolist() == [0.0, 0.0]
    assert r.p_value.tolist() == [1.0, 1.0]
    assert r.tau.tolist() == [0.0, 0.0]


def test_mann_kendall_matches_brute_force_on_tied_series() -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(0, 4, size=(200, 15)).astype(np.float64)
    r = mann_kendall(x)
    for row in range(x.shape[0]):
        s, variance = brute_force_mk(x[row])
        assert int(r.s[row]) == s
        assert r.variance[row] == pytest.approx(variance, rel=1e-12)
    expected_z = np.where(r.s > 0, r.s - 1, np.where(r.s < 0, r.s + 1, 0)) / np.sqrt(r.variance)
    np.testing.assert_allclose(r.z, expected_z, rtol=1e-12)
    np.testing.assert_allclose(r.p_value, 2.0 * stats.norm.sf(np.abs(expected_z)), rtol=1e-10)


def test_mann_kendall_s_and_tau_agree_with_scipy_kendalltau_under_ties() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, size=(50, 20)).astype(np.float64)
    r = mann_kendall(x)
    time = np.arange(20)
    pairs = 20 * 19 / 2
    for row in range(x.shape[0]):
        tau_b = stats.kendalltau(time, x[row]).statistic
        _, groups = np.unique(x[row], return_counts=True)
        tied_pairs = float(sum(g * (g - 1) / 2 for g in groups))
        # τ-b = S / √(n₀ (n₀ − n₁)) with time untied, so S follows from scipy's τ-b.
        s_from_scipy = tau_b * np.sqrt(pairs * (pairs - tied_pairs))
        assert int(r.s[row]) == round(s_from_scipy)
        assert r.tau[row] == pytest.approx(tau_b, abs=1e-12)


def test_mann_kendall_long_series_use_wider_ranks() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 300, size=(3, 200)).astype(np.float64)  # T > 127: int16 ranks
    r = mann_kendall(x)
    for row in range(3):
        s, variance = brute_force_mk(x[row])
        assert int(r.s[row]) == s
        assert r.variance[row] == pytest.approx(variance, rel=1e-12)


def test_mann_kendall_does_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=(1000, 52)), 1)
    whole = mann_kendall(x)
    chunked = mann_kendall(x, chunk_rows=7)
    for field in ("s", "variance", "z", "p_value", "tau"):
        np.testing.assert_array_equal(getattr(whole, field), getattr(chunked, field))


def test_mann_kendall_rejects_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        mann_kendall(np.array([[1.0, np.nan, 2.0]]))


# --- Space-time cube ------------------------------------------------------------------------


def test_space_time_cube_places_and_ignores_incidents() -> None:
    universe = [30, 10, 20, 10]  # unsorted, duplicated: rows follow np.unique
    cells = [10, 20, 20, 30, 0, 40, 10, 10]
    bins = [0, 1, 1, 2, 0, 0, -1, 3]
    severity = [1.0, 2.0, 0.5, 4.0, 9.0, 9.0, 9.0, 9.0]
    counts, intensity = space_time_cube(universe, cells, bins, 3, severity)
    assert counts.dtype == np.int64 and intensity.dtype == np.float64
    assert counts.tolist() == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    assert intensity.tolist() == [[1.0, 0.0, 0.0], [0.0, 2.5, 0.0], [0.0, 0.0, 4.0]]


def test_space_time_cube_columns_equal_aggregate_per_bin() -> None:
    rng = np.random.default_rng(9)
    universe = np.arange(1, 51, dtype=np.int64) * 7
    cells = rng.choice(np.r_[universe, [0, 3, 5]], size=500)
    bins = rng.integers(-1, 7, size=500)
    severity = rng.uniform(0.5, 3.0, size=500)
    counts, intensity = space_time_cube(universe, cells, bins, 6, severity)
    for t in range(6):
        in_bin = bins == t
        column = aggregate(universe, cells[in_bin], severity[in_bin])
        np.testing.assert_array_equal(counts[:, t], column.count)
        np.testing.assert_allclose(intensity[:, t], column.intensity, rtol=1e-12)


# --- Gi* per bin ----------------------------------------------------------------------------

BAMBARI = int(index_points([5.7591], [20.6706], [7], [7])[0, 0])


def disk(radius: int) -> npt.NDArray[np.int64]:
    _, cells = grid_disks([BAMBARI], radius)
    return np.unique(cells)


def columns_for_gi() -> tuple[KRingWeights, npt.NDArray[np.float64]]:
    weights = kring_weights(disk(6), 1)
    rng = np.random.default_rng(4)
    x = np.column_stack(
        [
            rng.poisson(1.5, weights.n),
            rng.uniform(0.0, 10.0, weights.n),
            np.full(weights.n, 0.1),  # constant column → 0
            np.zeros(weights.n),
            np.where(np.arange(weights.n) == 17, 5.0, 0.0),  # one incident
        ]
    ).astype(np.float64)
    return weights, x


def test_gi_star_by_bin_matches_the_formula_with_dense_weights() -> None:
    weights, x = columns_for_gi()
    dense = weights.matrix.toarray()
    n = weights.n
    w_i = dense.sum(axis=1)
    z = _gi_star_z_by_bin(x, weights)
    for t in range(x.shape[1]):
        col = x[:, t]
        s = np.sqrt(np.mean(col**2) - col.mean() ** 2)
        if np.ptp(col) == 0:
            np.testing.assert_array_equal(z[:, t], 0.0)
            continue
        expected = (dense @ col - col.mean() * w_i) / (s * np.sqrt((n * w_i - w_i**2) / (n - 1)))
        np.testing.assert_allclose(z[:, t], expected, rtol=1e-9, atol=1e-12)


def test_gi_star_by_bin_agrees_with_geo_hotspots_gi_star_z_column_by_column() -> None:
    # The private vectorised helper must stay equal to the one-field implementation.
    weights, x = columns_for_gi()
    z = _gi_star_z_by_bin(x, weights)
    for t in range(x.shape[1]):
        np.testing.assert_allclose(z[:, t], gi_star_z(x[:, t], weights), rtol=1e-10, atol=1e-12)


# --- End to end on planted space-time data --------------------------------------------------


def test_cluster_hot_in_the_last_3_of_20_bins_is_consecutive() -> None:
    weights = kring_weights(disk(12), 1)
    n, n_bins = weights.n, 20
    rng = np.random.default_rng(7)
    # Background: the same level in every cell of a bin (varying by bin), plus zero-mean noise
    # on cells at least 3 steps away so no k=1 neighbourhood of the cluster sees it.
    intensity = np.tile(2.0 + np.arange(n_bins) % 3, (n, 1))
    far = ~np.isin(weights.cells, disk(2))
    intensity[far] += rng.uniform(-0.5, 0.5, size=(int(far.sum()), n_bins))
    cluster = weights.positions(disk(1))
    intensity[np.ix_(cluster, np.arange(17, 20))] += 10.0
    counts = np.rint(intensity).astype(np.int64)
    result = emerging_hotspots(intensity, counts, weights)
    assert (result.category[cluster] == Cat.CONSECUTIVE_HOT.code).all()
    centre = int(weights.positions([BAMBARI])[0])
    assert result.hot_bins[centre] == 3 and bool(result.last_bin_hot[centre])
    assert result.labels[centre] == "consecutive_hot"
    assert set(result.cells_in(Cat.CONSECUTIVE_HOT)) >= set(disk(1).tolist())


def test_growing_cluster_is_intensifying() -> None:
    weights = kring_weights(disk(12), 1)
    n, n_bins = weights.n, 20
    rng = np.random.default_rng(8)
    intensity = rng.poisson(1.0, size=(n, n_bins)).astype(np.float64)
    cluster = weights.positions(disk(1))
    intensity[cluster] += 3.0 + np.arange(n_bins)
    counts = np.rint(intensity).astype(np.int64)
    result = emerging_hotspots(intensity, counts, weights)
    centre = int(weights.positions([BAMBARI])[0])
    assert result.category[centre] == Cat.INTENSIFYING_HOT.code
    assert result.hot_bins[centre] == n_bins
    assert result.trend_tau[centre] > 0.5 and result.trend_p[centre] < 0.05
    assert (result.category[cluster] == Cat.INTENSIFYING_HOT.code).all()


def test_lone_incident_needs_the_minimum_local_count() -> None:
    weights = kring_weights(disk(6), 1)
    intensity = np.zeros((weights.n, 12))
    centre = int(weights.positions([BAMBARI])[0])
    intensity[centre, -1] = 1.0
    counts = intensity.astype(np.int64)
    guarded = emerging_hotspots(intensity, counts, weights, min_local_count=3)
    assert guarded.z_score[centre, -1] > 3.0  # the z is there, the evidence is not
    assert guarded.category[centre] == Cat.NO_PATTERN.code
    assert not guarded.active[centre] and guarded.hot_bins[centre] == 0
    unguarded = emerging_hotspots(intensity, counts, weights, min_local_count=1)
    assert unguarded.category[centre] == Cat.NEW_HOT.code


def test_emerging_hotspots_rejects_a_cube_of_the_wrong_size() -> None:
    weights = kring_weights(disk(2), 1)
    with pytest.raises(ValueError, match="intensity_cube"):
        emerging_hotspots(np.zeros((weights.n + 1, 5)), np.zeros((weights.n + 1, 5)), weights)
    with pytest.raises(ValueError, match="same shape"):
        emerging_hotspots(np.zeros((weights.n, 5)), np.zeros((weights.n, 4)), weights)


def test_result_fields_are_plain_arrays_aligned_with_cells() -> None:
    weights = kring_weights(disk(3), 1)
    rng = np.random.default_rng(1)
    counts = rng.poisson(2.0, size=(weights.n, 10))
    result = emerging_hotspots(counts.astype(float), counts, weights)
    assert result.n == weights.n and result.n_bins == 10
    assert result.z_score.shape == (weights.n, 10)
    for field in ("category", "hot_bins", "cold_bins", "last_bin_hot", "trend_z", "active"):
        assert getattr(result, field).shape == (weights.n,)
    assert result.category.dtype == np.int8
    trend = mann_kendall(result.z_score)
    assert isinstance(trend, MannKendallResult)
    np.testing.assert_array_equal(result.trend_z, trend.z)
