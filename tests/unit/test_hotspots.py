"""Getis-Ord Gi* hot spots: agreement with esda, FDR, noise, planted spots, permutation nulls."""

from __future__ import annotations

import doctest
import importlib
import itertools
import json
import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from shapely.geometry import box

from geo import cells as geo_cells
from geo.aggregate import aggregate
from geo.hotspots import (
    ConfidenceLevel,
    HotspotResult,
    benjamini_hochberg,
    confidence_classes,
    event_tails,
    find_hotspots,
    gi_star_p_values,
    gi_star_z,
    permutation_p_values,
)
from geo.weights import KRingWeights, kring_weights

CAR_UCDP = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "ucdp"
    / "car_ucdp_ged_v23_1.geojson"
)
hotspots_module = importlib.import_module("geo.hotspots")

#: The Central African Republic's bounding box (lon 14.61–27.20, lat 3.19–10.47), padded.
CAR_BOX = box(14.4, 3.0, 27.5, 11.2)
#: About 100k cells at resolution 6 (CAR and most of the DRC).
LARGE_BOX = box(12.0, -4.0, 31.0, 12.0)
#: A cell near the middle of CAR at resolution 6, for planted spots.
CENTRE = (6.6, 20.9)


@cache
def universe(resolution: int, large: bool = False) -> geo_cells.CellArray:
    return geo_cells.polygon_cells(LARGE_BOX if large else CAR_BOX, resolution)


@cache
def weights_for(resolution: int, k: int, large: bool = False) -> KRingWeights:
    return kring_weights(universe(resolution, large), k)


def centre_cell(resolution: int) -> int:
    lat, lng = CENTRE
    return int(geo_cells.index_points([lat], [lng], [resolution], [resolution])[0, 0])


def disc_positions(weights: KRingWeights, centre: int, radius: int) -> np.ndarray:
    _, disc = geo_cells.grid_disks([centre], radius)
    positions = weights.positions(disc)
    assert (positions >= 0).all()
    return positions


def as_field(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return count.astype(np.float64), count


# --------------------------------------------------------------------------------------------
# Agreement with esda (test-only reference)
# --------------------------------------------------------------------------------------------


@cache
def car_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features = json.loads(CAR_UCDP.read_text(encoding="utf-8"))["features"]
    lng = np.array([f["geometry"]["coordinates"][0] for f in features], dtype=np.float64)
    lat = np.array([f["geometry"]["coordinates"][1] for f in features], dtype=np.float64)
    deaths = np.array([f["properties"]["best"] for f in features], dtype=np.float64)
    return lat, lng, deaths


def esda_weights(weights: KRingWeights, *, keep_diagonal: bool = True):  # type: ignore[no-untyped-def]
    libpysal = pytest.importorskip("libpysal")
    matrix = weights.matrix.copy()
    if not keep_diagonal:
        matrix.setdiag(0)
        matrix.eliminate_zeros()
    return libpysal.weights.WSP(matrix).to_W(silence_warnings=True)


needs_car_data = pytest.mark.skipif(
    not CAR_UCDP.exists(), reason=f"UCDP CAR extract not found at {CAR_UCDP}"
)


@needs_car_data
@pytest.mark.parametrize(
    ("resolution", "k"),
    [(5, 1), (5, 2), (6, 1), (6, 2)],
    ids=["res5-k1", "res5-k2", "res6-k1", "res6-k2"],
)
@pytest.mark.parametrize("variable", ["count", "log-deaths"])
def test_z_scores_equal_esda_g_local_star_on_car_ucdp(
    resolution: int, k: int, variable: str
) -> None:
    esda = pytest.importorskip("esda")
    lat, lng, deaths = car_points()
    weights = weights_for(resolution, k)
    # where_prec matters little here: every event is indexed at the analysis resolution.
    incident_cells = geo_cells.index_points(lat, lng, np.full(lat.size, resolution), [resolution])
    severity = np.ones(lat.size) if variable == "count" else np.log1p(deaths)
    values = aggregate(weights.cells, incident_cells[:, 0], severity)
    assert values.outside == 0
    assert values.count.sum() == lat.size

    ours = gi_star_z(values.intensity, weights)
    reference = esda.G_Local(
        values.intensity, esda_weights(weights), transform="B", star=True, permutations=0
    )

    np.testing.assert_allclose(ours, reference.Zs, atol=1e-9, rtol=0)
    assert np.abs(ours).max() > 5  # the data do have hot spots: the comparison is not all zeros
    upper, lower = gi_star_p_values(values.intensity, weights, approximation="normal")
    np.testing.assert_allclose(np.minimum(upper, lower), reference.p_norm, atol=1e-12, rtol=0)


@needs_car_data
def test_esda_adds_the_same_diagonal_when_given_weights_without_it() -> None:
    esda = pytest.importorskip("esda")
    lat, lng, _ = car_points()
    weights = weights_for(6, 1)
    cells = geo_cells.index_points(lat, lng, np.full(lat.size, 6), [6])[:, 0]
    y = aggregate(weights.cells, cells, np.ones(lat.size)).intensity
    without_diagonal = esda_weights(weights, keep_diagonal=False)
    assert without_diagonal.sparse.diagonal().sum() == 0

    reference = esda.G_Local(y, without_diagonal, transform="B", star=True, permutations=0)

    np.testing.assert_allclose(gi_star_z(y, weights), reference.Zs, atol=1e-9, rtol=0)


def test_z_score_matches_the_ord_getis_formula_by_hand() -> None:
    weights = weights_for(6, 1)
    rng = np.random.default_rng(3)
    x = rng.gamma(0.5, 2.0, weights.n)
    i = int(weights.positions([centre_cell(6)])[0])
    _, disc = geo_cells.grid_disks([centre_cell(6)], 1)
    n, w_i = x.size, disc.size
    lag = x[weights.positions(disc)].sum()
    s = np.sqrt((x**2).mean() - x.mean() ** 2)
    expected = (lag - x.mean() * w_i) / (s * np.sqrt((n * w_i - w_i**2) / (n - 1)))

    assert gi_star_z(x, weights)[i] == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Benjamini–Hochberg
# --------------------------------------------------------------------------------------------

#: The fifteen p-values of Benjamini & Hochberg (1995, section 4.2); at q* = 0.05 the procedure
#: rejects the four smallest.
BH_1995 = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
    0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000,
]  # fmt: skip


def test_benjamini_hochberg_hand_computed() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 → 4p/rank = 0.04, 0.06, 0.0533, 0.2 → step-up minimum
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.2], rtol=1e-12)


def test_benjamini_hochberg_reproduces_the_1995_example() -> None:
    q = benjamini_hochberg(BH_1995)

    assert (q <= 0.05).tolist() == [True] * 4 + [False] * 11
    assert q[3] == pytest.approx(0.0095 * 15 / 4)


def test_benjamini_hochberg_equals_scipy_false_discovery_control() -> None:
    false_discovery_control = getattr(stats, "false_discovery_control", None)
    if false_discovery_control is None:
        pytest.skip("scipy < 1.11 has no false_discovery_control")
    p = np.random.default_rng(7).beta(0.4, 1.0, 5_000)

    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p), rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=60))
def test_benjamini_hochberg_is_monotone_bounded_and_not_below_p(p: list[float]) -> None:
    values = np.array(p)
    q = benjamini_hochberg(values)
    order = np.argsort(values, kind="stable")

    assert q.shape == values.shape
    assert (np.diff(q[order]) >= 0).all()
    assert (q <= 1.0).all()
    assert (q >= values).all()


@pytest.mark.parametrize("bad", [[0.5, np.nan], [-0.1], [1.2]], ids=["nan", "negative", "above-1"])
def test_benjamini_hochberg_rejects_values_that_are_not_p_values(bad: list[float]) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg(bad)


def test_benjamini_hochberg_keeps_shape_and_handles_empty() -> None:
    assert benjamini_hochberg(np.zeros(0)).shape == (0,)
    assert benjamini_hochberg(np.full((2, 3), 0.5)).shape == (2, 3)


# --------------------------------------------------------------------------------------------
# Confidence classes
# --------------------------------------------------------------------------------------------


def test_confidence_classes_use_one_tail_each() -> None:
    p_hot = np.array([0.009, 0.01, 0.049, 0.05, 0.099, 0.1, 0.11, 0.9, 0.999])
    classes = confidence_classes(p_hot, 1 - p_hot)

    assert classes.dtype == np.int8
    assert classes.tolist() == [3, 3, 2, 2, 1, 1, 0, -1, -3]
    assert [ConfidenceLevel(c).name for c in classes[-2:]] == ["COLD_90", "COLD_99"]


def test_confidence_classes_cold_codes_and_hot_guard() -> None:
    classes = confidence_classes(
        [0.999, 0.96, 0.001, 0.001], [0.001, 0.04, 0.999, 0.999], hot_allowed=[1, 1, 1, 0]
    )

    assert classes.tolist() == [-3, -2, 3, 0]
    assert ConfidenceLevel.COLD_95.alpha == 0.05
    assert ConfidenceLevel.NOT_SIGNIFICANT.alpha is None


# --------------------------------------------------------------------------------------------
# Pure noise, the zero-neighbourhood artefact and the skew of counts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "k"),
    [(0.3, 1), (0.3, 2), (0.01, 2)],
    ids=["poisson0.3-k1", "poisson0.3-k2", "sparse-poisson0.01-k2"],
)
def test_pure_noise_has_essentially_no_significant_cells(rate: float, k: int) -> None:
    esda = pytest.importorskip("esda")
    weights = weights_for(6, k)
    assert weights.n >= 20_000
    count = np.random.default_rng(2024).poisson(rate, weights.n)

    result = find_hotspots(as_field(count), weights)
    reference = esda.G_Local(
        count.astype(float), esda_weights(weights), transform="B", star=True, permutations=0
    )
    esda_flagged = float((reference.p_norm < 0.05).mean())
    print(
        f"\nPoisson({rate}) k={k} over {weights.n} cells: hot {result.hot.mean():.3%}, "
        f"cold {result.cold.mean():.3%}; esda p_norm < 0.05 flags {esda_flagged:.1%}"
    )

    assert result.hot.mean() <= 0.005
    assert result.cold.mean() <= 0.005
    assert esda_flagged >= 0.03
    assert esda_flagged >= 10 * result.hot.mean()


def test_minimum_local_count_removes_lone_incidents_in_empty_country() -> None:
    weights = weights_for(6, 1)
    count = np.random.default_rng(5).poisson(0.01, weights.n)
    field = as_field(count)

    unguarded = find_hotspots(field, weights, approximation="normal", min_local_count=0)
    guarded = find_hotspots(field, weights, approximation="normal")
    print(f"\nsparse noise, normal tail + FDR: {unguarded.hot.mean():.2%} hot without the guard")

    # Every cell next to a lone incident is "hot at 99 %" under the normal tail, FDR or not.
    lone = (unguarded.local_count == 1) & (count.sum() > 0)
    assert unguarded.hot.mean() >= 0.03
    assert (unguarded.confidence[lone] == ConfidenceLevel.HOT_99).mean() > 0.9
    assert guarded.hot.mean() <= 0.005
    assert not guarded.hot[guarded.local_count < 3].any()
    # The guard thins classes, never z-scores.
    np.testing.assert_array_equal(guarded.z_score, unguarded.z_score)


def test_pearson3_tail_is_calibrated_where_the_normal_tail_is_not() -> None:
    weights = weights_for(6, 1)
    count = np.random.default_rng(11).poisson(0.3, weights.n).astype(float)
    pearson3, _ = gi_star_p_values(count, weights)
    normal, _ = gi_star_p_values(count, weights, approximation="normal")
    permuted = permutation_p_values(count, weights, permutations=99_999, seed=1)
    rates = {name: float((p <= 0.001).mean()) for name, p in
             [("pearson3", pearson3), ("normal", normal), ("permutation", permuted)]}  # fmt: skip
    print(f"\nshare of noise cells with upper p <= 0.001 (nominal 0.001): {rates}")

    assert rates["pearson3"] <= 0.002
    assert rates["normal"] >= 0.003
    assert rates["permutation"] <= 0.002


def test_sum_skewness_equals_enumeration_of_all_neighbourhoods() -> None:
    x = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 1.0, 0.0, 7.0])
    for size in (1, 3, 4, 7):
        sums = np.array([sum(c) for c in itertools.combinations(x, size)])
        expected = stats.skew(sums)

        got = hotspots_module._sum_skewness(x, np.array([float(size)]))[0]

        assert got == pytest.approx(expected, rel=1e-12), size


# --------------------------------------------------------------------------------------------
# Planted hot and cold spots
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("radius", "rate", "k"),
    [(2, 5.0, 1), (3, 3.0, 1), (4, 2.0, 2)],
    ids=["r2-rate5-k1", "r3-rate3-k1", "r4-rate2-k2"],
)
def test_planted_hotspot_is_found(radius: int, rate: float, k: int) -> None:
    # A disc of `radius` grid steps at `rate` incidents per cell in Poisson(0.3) noise over
    # 36k cells: FDR over that many tests asks for strong evidence, so the disc's rim (whose
    # neighbourhood is half background) is not always found; its inside must be.
    weights = weights_for(6, k)
    rng = np.random.default_rng(radius * 10 + k)
    count = rng.poisson(0.3, weights.n)
    disc = disc_positions(weights, centre_cell(6), radius)
    inside = disc_positions(weights, centre_cell(6), radius - 1)
    count[disc] = rng.poisson(rate, disc.size)
    far = np.ones(weights.n, dtype=bool)
    far[disc_positions(weights, centre_cell(6), radius + k + 1)] = False

    result = find_hotspots(as_field(count), weights)

    hot_95 = result.confidence >= ConfidenceLevel.HOT_95
    assert hot_95[disc].mean() >= 0.7, f"{hot_95[disc].sum()} of {disc.size} disc cells hot"
    assert hot_95[inside].mean() >= 0.8
    assert result.hot[far].sum() <= 0.001 * weights.n
    assert not result.cold[disc].any()


def test_planted_cold_spot_in_a_high_background_is_found() -> None:
    weights = weights_for(6, 1)
    rng = np.random.default_rng(17)
    count = rng.poisson(5.0, weights.n)
    disc = disc_positions(weights, centre_cell(6), 3)
    count[disc] = rng.poisson(0.3, disc.size)
    far = np.ones(weights.n, dtype=bool)
    far[disc_positions(weights, centre_cell(6), 5)] = False

    result = find_hotspots(as_field(count), weights)

    cold_95 = result.confidence <= ConfidenceLevel.COLD_95
    assert cold_95[disc].mean() >= 0.7
    assert cold_95[disc_positions(weights, centre_cell(6), 2)].all()
    # the local-count guard does not touch cold classes: these neighbourhoods hold < 3 incidents
    assert (result.local_count[disc] < 3).any()
    assert result.cold[far].sum() <= 0.001 * weights.n
    assert not result.hot[disc].any()


def test_hotspots_accepts_cell_values_and_reports_local_counts() -> None:
    weights = weights_for(5, 1)
    rng = np.random.default_rng(1)
    picked = rng.choice(weights.cells, 500)
    values = aggregate(weights.cells, picked, rng.uniform(0.5, 2.0, picked.size))

    result = find_hotspots(values, weights)

    assert isinstance(result, HotspotResult)
    assert result.cells is weights.cells
    np.testing.assert_array_equal(result.count, values.count)
    origin, neighbour = geo_cells.grid_disks(weights.cells[:50], 1)
    pos = weights.positions(neighbour)
    inside = pos >= 0
    expected = np.bincount(origin[inside], weights=values.count[pos[inside]], minlength=50)
    np.testing.assert_array_equal(result.local_count[:50], expected)
    np.testing.assert_allclose(result.z_score, gi_star_z(values.intensity, weights))
    assert (result.neighbour_count <= 7).all()
    assert (result.inference, result.permutations, result.k) == ("pearson3", None, 1)


def test_hotspots_refuses_values_of_another_universe() -> None:
    weights = weights_for(5, 1)
    values = aggregate(weights.cells[:-1], np.zeros(0, np.int64), np.zeros(0))

    with pytest.raises(ValueError, match="same universe"):
        find_hotspots(values, weights)
    with pytest.raises(ValueError, match="count"):
        find_hotspots((np.zeros(weights.n), np.zeros(3)), weights)


def test_without_fdr_classes_come_from_raw_p_values() -> None:
    weights = weights_for(6, 1)
    count = np.random.default_rng(9).poisson(0.3, weights.n)

    raw = find_hotspots(as_field(count), weights, fdr=False)
    adjusted = find_hotspots(as_field(count), weights)

    np.testing.assert_array_equal(raw.q_value, adjusted.q_value)
    assert raw.hot.sum() > 10 * max(adjusted.hot.sum(), 1)
    np.testing.assert_array_equal(
        raw.confidence,
        confidence_classes(raw.p_value, raw.p_value_cold, hot_allowed=raw.local_count >= 3),
    )


# --------------------------------------------------------------------------------------------
# Permutation inference with a shared null per neighbourhood size
# --------------------------------------------------------------------------------------------


@cache
def planted_field() -> tuple[KRingWeights, np.ndarray, np.ndarray]:
    weights = weights_for(6, 1)
    rng = np.random.default_rng(31)
    count = rng.poisson(0.3, weights.n)
    disc = disc_positions(weights, centre_cell(6), 3)
    count[disc] = rng.poisson(3.0, disc.size)
    return weights, count.astype(float), disc


def test_permutation_p_values_agree_with_analytic_ones() -> None:
    weights, x, _ = planted_field()
    analytic, _ = gi_star_p_values(x, weights)

    permuted = permutation_p_values(x, weights, permutations=999, seed=0)

    rho = stats.spearmanr(analytic, permuted).statistic
    print(f"\nSpearman(analytic Pearson III, permutation) = {rho:.4f}")
    assert rho > 0.9
    interior = disc_positions(weights, centre_cell(6), 2)
    assert (permuted[interior] <= 0.01).all()
    assert permuted.min() == pytest.approx(1 / 1000)
    assert permuted.max() <= 1.0


def test_permutation_p_values_are_deterministic_for_a_seed() -> None:
    weights, x, _ = planted_field()

    first = permutation_p_values(x, weights, permutations=199, seed=42)
    again = permutation_p_values(x, weights, permutations=199, seed=42)
    other = permutation_p_values(x, weights, permutations=199, seed=43)

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_permutation_p_value_of_a_known_null() -> None:
    # One non-zero value among 37 cells: a neighbour j of it sees L_j = 5 exactly when the
    # value is among the 6 others drawn; drawing from all 37 values gives 6/37 (exact: 6/36).
    centre = centre_cell(6)
    _, cells = geo_cells.grid_disks([centre], 3)
    weights = kring_weights(cells, 1)
    x = np.zeros(weights.n)
    x[weights.positions([centre])] = 5.0
    _, ring = geo_cells.grid_disks([centre], 1)
    neighbour = int(weights.positions([c for c in ring.tolist() if c != centre])[0])

    p = permutation_p_values(x, weights, permutations=99_999, seed=3)

    assert p[neighbour] == pytest.approx(6 / 37, abs=0.005)
    assert p[weights.positions([centre])[0]] == 1.0  # its own value is not in L_i


def test_hotspots_with_permutations_finds_the_planted_spot() -> None:
    # FDR over 36k cells needs p-values finer than 1/10_000 to reach q ≤ 0.05 for a few dozen
    # cells, so many permutations: cheap with a shared null.
    weights, x, disc = planted_field()
    far = np.ones(weights.n, dtype=bool)
    far[disc_positions(weights, centre_cell(6), 5)] = False

    result = find_hotspots((x, x.astype(np.int64)), weights, permutations=99_999, seed=0)

    assert result.inference == "permutation"
    assert result.permutations == 99_999
    np.testing.assert_array_equal(result.z_score, gi_star_z(x, weights))
    hot_95 = result.confidence >= ConfidenceLevel.HOT_95
    assert hot_95[disc].mean() > 0.5
    assert hot_95[disc_positions(weights, centre_cell(6), 2)].mean() >= 0.8
    assert result.hot[far].sum() <= 0.001 * weights.n


def test_sampler_draws_distinct_indices_even_for_the_whole_population() -> None:
    rng = np.random.default_rng(0)

    drawn = hotspots_module._draw_without_replacement(rng, 9, 9, 500)

    assert (np.sort(drawn, axis=1) == np.arange(9)).all()


def test_permutation_p_values_for_100k_cells() -> None:
    weights = weights_for(6, 1, large=True)
    assert weights.n >= 100_000
    rng = np.random.default_rng(0)
    x = rng.poisson(0.3, weights.n).astype(float)

    started = time.perf_counter()
    p = permutation_p_values(x, weights, permutations=999, seed=0)
    elapsed = time.perf_counter() - started
    print(
        f"\npermutation_p_values: {weights.n} cells x 999 permutations in {elapsed * 1000:.0f} ms"
    )

    assert p.shape == (weights.n,)
    assert ((p >= 1 / 1000) & (p <= 1)).all()


# --------------------------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("permutations", [None, 99], ids=["analytic", "permutation"])
def test_constant_field_has_no_spots_and_no_nans(permutations: int | None) -> None:
    weights = weights_for(5, 1)
    x = np.full(weights.n, 0.1)  # 0.1 is not exact in binary: rounding must not make a pattern

    result = find_hotspots((x, np.ones(weights.n, np.int64)), weights, permutations=permutations)

    assert (result.z_score == 0).all()
    assert np.isfinite(result.p_value).all() and np.isfinite(result.q_value).all()
    assert (result.confidence == 0).all()


def test_empty_universe() -> None:
    weights = kring_weights(np.zeros(0, np.int64), 1)

    result = find_hotspots((np.zeros(0), np.zeros(0, np.int64)), weights, permutations=9)

    assert result.n == 0
    assert result.z_score.shape == result.q_value.shape == result.confidence.shape == (0,)
    assert gi_star_z(np.zeros(0), weights).shape == (0,)


def test_single_cell() -> None:
    weights = kring_weights([centre_cell(6)], 2)

    result = find_hotspots((np.array([4.0]), np.array([4])), weights)
    permuted = permutation_p_values(np.array([4.0]), weights)

    assert result.z_score.tolist() == [0.0]
    assert result.confidence.tolist() == [0]
    assert result.local_count.tolist() == [4]
    assert permuted.tolist() == [1.0]


def test_neighbourhood_covering_the_whole_universe_gives_zero_z() -> None:
    _, cells = geo_cells.grid_disks([centre_cell(6)], 1)
    weights = kring_weights(cells, 2)  # every cell sees all 7
    x = np.arange(7, dtype=float)

    assert (gi_star_z(x, weights) == 0).all()


def test_non_finite_values_are_refused() -> None:
    weights = weights_for(5, 1)
    x = np.zeros(weights.n)
    x[0] = np.nan

    with pytest.raises(ValueError, match="finite"):
        gi_star_z(x, weights)


def test_docstring_examples_run() -> None:
    outcome = doctest.testmod(hotspots_module, optionflags=doctest.ELLIPSIS)

    assert outcome.attempted > 10
    assert outcome.failed == 0


# --------------------------------------------------------------------------- event null


def _scattered_with_one_dense_cell(seed: int = 3) -> tuple[np.ndarray, KRingWeights]:
    """200 incidents scattered one per cell, and 22 in a single cell with quiet neighbours."""
    weights = weights_for(6, 1)
    rng = np.random.default_rng(seed)
    count = np.zeros(weights.n, dtype=np.int64)
    count[rng.choice(weights.n, 200, replace=False)] = 1
    dense = weights.positions([geo_cells.index_points([CENTRE[0]], [CENTRE[1]], [6], (6,))[0, 0]])
    neighbourhood = weights.matrix[dense[0]].indices
    count[neighbourhood] = 0
    count[dense[0]] = 22
    return count, weights


def test_an_isolated_dense_cell_is_hot_under_the_event_null_only() -> None:
    """Twenty-two incidents in one cell are far beyond chance placement of incidents, though a
    big value landing anywhere is not unusual among permuted cell values."""
    count, weights = _scattered_with_one_dense_cell()
    dense = int(np.argmax(count))
    field = (count.astype(float), count)
    events = find_hotspots(
        field, weights, approximation="events", incident_weights=np.ones(int(count.sum()))
    )
    values = find_hotspots(field, weights, approximation="pearson3")
    assert events.confidence[dense] == ConfidenceLevel.HOT_99
    assert values.confidence[dense] < ConfidenceLevel.HOT_99
    # Elsewhere only chance triples among the scattered incidents can reach 90 % (FDR allows
    # one false discovery in ten there); nothing outside the dense neighbourhood reaches 95 %.
    around = set(weights.matrix[dense].indices.tolist())
    strong = set(np.flatnonzero(events.confidence >= ConfidenceLevel.HOT_95).tolist())
    elsewhere = set(np.flatnonzero(events.hot).tolist()) - around
    assert strong <= around
    assert len(elsewhere) <= 2


@pytest.mark.parametrize(
    ("rate", "k"),
    [(0.3, 1), (0.05, 2), (0.01, 2), (2.0, 1)],
    ids=["poisson-0.3-k1", "poisson-0.05-k2", "poisson-0.01-k2", "poisson-2-k1"],
)
def test_the_event_null_keeps_pure_noise_quiet(rate: float, k: int) -> None:
    weights = weights_for(6, k)
    hot_shares = []
    for seed in range(3):
        count = np.random.default_rng(seed).poisson(rate, weights.n)
        result = find_hotspots(
            (count.astype(float), count),
            weights,
            approximation="events",
            incident_weights=np.ones(int(count.sum())),
        )
        hot_shares.append(float(result.hot.mean()))
        assert float(result.cold.mean()) <= 0.005
    assert max(hot_shares) <= 0.005


@pytest.mark.parametrize(
    ("observed", "cells", "incidents"),
    [(3, 7, 200), (8, 7, 2000), (15, 19, 5000), (2, 7, 50)],
    ids=["sparse", "busy", "k2", "very-sparse"],
)
def test_event_tails_with_unit_weights_approximate_the_binomial(observed, cells, incidents):
    n = 20_000
    upper, lower = event_tails(
        np.array([float(observed)]), np.array([float(cells)]), n, np.ones(incidents)
    )
    exact_upper = stats.binom.sf(observed - 1, incidents, cells / n)
    exact_lower = stats.binom.cdf(observed, incidents, cells / n)
    np.testing.assert_allclose(upper[0], exact_upper, rtol=1e-9)
    np.testing.assert_allclose(lower[0], exact_lower, rtol=1e-9)


def test_event_tails_with_varying_weights_are_close_to_simulation() -> None:
    """Pearson III on three exact moments, checked against a Monte Carlo of the null."""
    rng = np.random.default_rng(0)
    incident_weights = rng.choice([3.0, 7.0, 10.0], size=400)
    n, cells = 5_000, 7
    draws = rng.random((20_000, incident_weights.size)) < cells / n
    sums = draws.astype(float) @ incident_weights
    for observed in (10.0, 20.0, 30.0):
        upper, _ = event_tails(np.array([observed]), np.array([float(cells)]), n, incident_weights)
        simulated = (sums >= observed).mean()
        assert simulated / 3 <= upper[0] <= max(simulated * 3, 3 / 20_000)


def test_the_event_null_needs_the_incident_weights() -> None:
    weights = weights_for(6, 1)
    count = np.zeros(weights.n, dtype=np.int64)
    with pytest.raises(ValueError, match="incident_weights"):
        find_hotspots((count.astype(float), count), weights, approximation="events")
