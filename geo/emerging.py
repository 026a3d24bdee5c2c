"""Emerging hot spots: how each cell's Gi* hot/cold status and its trend evolve over time bins.

A space-time cube (cells × time bins) → Gi* z-score per bin → a Mann-Kendall trend on each
cell's z series → the seventeen pattern categories of ArcGIS Pro's Emerging Hot Spot Analysis
(new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating and historical
hot and cold spots, and no pattern), with every corner case the references disagree on decided
here and pinned by a golden test in ``tests/unit/test_emerging.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from geo.cells import NO_CELL, CellArray
from geo.hotspots import benjamini_hochberg
from geo.weights import KRingWeights

__all__ = [
    "CATEGORIES",
    "EmergingCategory",
    "EmergingResult",
    "MannKendallResult",
    "classify",
    "emerging_hotspots",
    "mann_kendall",
    "space_time_cube",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
CodeArray = npt.NDArray[np.int8]

#: Rows of the Mann-Kendall working set per chunk: 8192 rows × 52 bins keeps every temporary
#: under a few MB, whatever the number of cells.
_MK_CHUNK_ROWS = 8192


class EmergingCategory(enum.StrEnum):
    """Emerging hot spot pattern of a cell; :attr:`code` is its ``int8`` code in results.

    The codes are the positions in :data:`CATEGORIES` (definition order): 0 is no pattern,
    1–8 the hot patterns, 9–16 their cold mirrors in the same order. See :func:`classify` for
    the definitions.
    """

    NO_PATTERN = "no_pattern"
    NEW_HOT = "new_hot"
    CONSECUTIVE_HOT = "consecutive_hot"
    INTENSIFYING_HOT = "intensifying_hot"
    PERSISTENT_HOT = "persistent_hot"
    DIMINISHING_HOT = "diminishing_hot"
    SPORADIC_HOT = "sporadic_hot"
    OSCILLATING_HOT = "oscillating_hot"
    HISTORICAL_HOT = "historical_hot"
    NEW_COLD = "new_cold"
    CONSECUTIVE_COLD = "consecutive_cold"
    INTENSIFYING_COLD = "intensifying_cold"
    PERSISTENT_COLD = "persistent_cold"
    DIMINISHING_COLD = "diminishing_cold"
    SPORADIC_COLD = "sporadic_cold"
    OSCILLATING_COLD = "oscillating_cold"
    HISTORICAL_COLD = "historical_cold"

    @property
    def code(self) -> int:
        """The ``int8`` code of this category in :attr:`EmergingResult.category`."""
        return _CODE_OF[self]

    @classmethod
    def from_code(cls, code: int) -> EmergingCategory:
        """The category of an ``int8`` code."""
        return CATEGORIES[int(code)]


#: Every category, indexed by its code.
CATEGORIES: tuple[EmergingCategory, ...] = tuple(EmergingCategory)
_CODE_OF: dict[EmergingCategory, int] = {category: i for i, category in enumerate(CATEGORIES)}
_NAMES = np.array([category.value for category in CATEGORIES])


@dataclass(frozen=True, eq=False)
class MannKendallResult:
    """Mann-Kendall trend test of each row of a series matrix (arrays of length ``n``).

    Attributes
    ----------
    s
        ``S = Σ_{i<j} sign(x_j − x_i)`` (``int64``).
    variance
        ``Var(S)`` under the null, tie-corrected.
    z
        Continuity-corrected normal score: ``(S − 1)/√Var`` for ``S > 0``, ``(S + 1)/√Var``
        for ``S < 0``, 0 otherwise (and 0 when ``Var = 0``).
    p_value
        Two-sided p-value ``2(1 − Φ(|z|))``.
    tau
        Kendall's τ-b between the series and time, ``S / √(n₀ (n₀ − n₁))`` with
        ``n₀ = T(T−1)/2`` and ``n₁ = Σ_g t_g(t_g−1)/2`` (equal to
        ``scipy.stats.kendalltau(range(T), x).statistic``); 0 for a constant series.
    """

    s: IntArray
    variance: FloatArray
    z: FloatArray
    p_value: FloatArray
    tau: FloatArray


@dataclass(frozen=True, eq=False)
class EmergingResult:
    """Emerging hot spot analysis of a space-time cube, every array aligned with ``cells``.

    Attributes
    ----------
    cells
        The universe (sorted ``int64`` cells), ``weights.cells``.
    category
        ``int8`` :class:`EmergingCategory` codes (:attr:`labels` gives the names).
    z_score
        Gi* z-score of each cell in each bin, ``n × T``.
    hot_bins, cold_bins
        Number of significantly hot / cold bins per cell (``int64``).
    last_bin_hot, last_bin_cold
        Whether the final bin is significantly hot / cold.
    trend_z, trend_p, trend_tau
        Mann-Kendall trend of the z series (:class:`MannKendallResult` ``z``, ``p_value``,
        ``tau``); positive is a rising z (hotter).
    active
        Whether the neighbourhood reached ``min_local_count`` incidents in at least one bin;
        inactive cells are :attr:`EmergingCategory.NO_PATTERN`.
    alpha, trend_alpha, min_local_count
        The settings that produced ``category``.
    """

    cells: CellArray
    category: CodeArray
    z_score: FloatArray
    hot_bins: IntArray
    cold_bins: IntArray
    last_bin_hot: BoolArray
    last_bin_cold: BoolArray
    trend_z: FloatArray
    trend_p: FloatArray
    trend_tau: FloatArray
    active: BoolArray
    alpha: float
    trend_alpha: float
    min_local_count: int

    @property
    def n(self) -> int:
        return int(self.cells.size)

    @property
    def n_bins(self) -> int:
        return int(self.z_score.shape[1])

    @property
    def labels(self) -> npt.NDArray[np.str_]:
        """Category names (``"new_hot"``, …) per cell."""
        return np.asarray(_NAMES[self.category], dtype=np.str_)

    def cells_in(self, category: EmergingCategory) -> CellArray:
        """The cells classified as ``category``."""
        return np.asarray(self.cells[self.category == category.code], dtype=np.int64)


def space_time_cube(
    universe: npt.ArrayLike,
    incident_cells: npt.ArrayLike,
    bin_index: npt.ArrayLike,
    n_bins: int,
    severity: npt.ArrayLike,
) -> tuple[IntArray, FloatArray]:
    """Count incidents and sum their severity per (cell, time bin).

    Parameters
    ----------
    universe
        The analysis universe (cells of one resolution); rows follow ``np.unique(universe)``,
        the order of :attr:`geo.weights.KRingWeights.cells`.
    incident_cells
        Each incident's cell at that resolution, :data:`geo.cells.NO_CELL` (0) where its
        location does not support the resolution.
    bin_index
        Each incident's time bin, ``0 … n_bins − 1`` (oldest first).
    n_bins
        ``T``, the number of time bins.
    severity
        Each incident's severity weight (the analysed intensity).

    Returns
    -------
    counts, intensity
        ``int64`` and ``float64`` arrays of shape ``(n, T)``. Incidents without a cell, outside
        the universe or with a bin outside ``[0, T)`` are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> counts, intensity = space_time_cube(
    ...     [10, 20], [20, 20, 10, 0, 30, 10], [0, 0, 1, 1, 1, 2], 2, [1.0, 2.0, 3.0, 9, 9, 9]
    ... )
    >>> counts.tolist(), intensity.tolist()
    ([[0, 1], [2, 0]], [[0.0, 3.0], [3.0, 0.0]])
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    cells = np.unique(np.asarray(universe, dtype=np.int64))
    wanted = np.asarray(incident_cells, dtype=np.int64).ravel()
    bins = np.asarray(bin_index, dtype=np.int64).ravel()
    weights = np.asarray(severity, dtype=np.float64).ravel()
    if not wanted.shape == bins.shape == weights.shape:
        raise ValueError("incident_cells, bin_index and severity must have the same length")
    n = cells.size
    if n == 0:
        return np.zeros((0, n_bins), np.int64), np.zeros((0, n_bins), np.float64)
    pos = np.minimum(np.searchsorted(cells, wanted), n - 1)
    keep = (wanted != NO_CELL) & (cells[pos] == wanted) & (bins >= 0) & (bins < n_bins)
    flat = pos[keep] * n_bins + bins[keep]
    size = n * n_bins
    counts = np.bincount(flat, minlength=size).astype(np.int64).reshape(n, n_bins)
    intensity = np.bincount(flat, weights=weights[keep], minlength=size).reshape(n, n_bins)
    return counts, np.asarray(intensity, dtype=np.float64)


def _rank_dtype(n_bins: int) -> npt.DTypeLike:
    # Dense ranks lie in [0, T); their differences in (−T, T) must not overflow.
    if n_bins <= 127:
        return np.int8
    if n_bins <= 32_767:
        return np.int16
    return np.int32


def _ranks_and_ties(
    block: FloatArray,
) -> tuple[npt.NDArray[np.signedinteger[Any]], FloatArray, FloatArray]:
    """Dense ranks of each row, and per row ``Σ t(t−1)(2t+5)`` and ``Σ t(t−1)/2`` over ties."""
    m, t_bins = block.shape
    order = np.argsort(block, axis=1, kind="stable")
    ordered = np.take_along_axis(block, order, axis=1)
    starts_group = np.ones(block.shape, dtype=bool)
    starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    dtype = _rank_dtype(t_bins)
    dense_sorted = (np.cumsum(starts_group, axis=1) - 1).astype(dtype)
    ranks = np.empty_like(dense_sorted)
    np.put_along_axis(ranks, order, dense_sorted, axis=1)
    # Each row's first element starts a group, so runs never cross rows in the flat view.
    starts = np.flatnonzero(starts_group.ravel())
    lengths = np.diff(np.append(starts, m * t_bins)).astype(np.float64)
    rows = starts // t_bins
    variance_ties = np.bincount(
        rows, weights=lengths * (lengths - 1.0) * (2.0 * lengths + 5.0), minlength=m
    )
    pair_ties = np.bincount(rows, weights=lengths * (lengths - 1.0) / 2.0, minlength=m)
    return ranks, variance_ties.astype(np.float64), pair_ties.astype(np.float64)


def mann_kendall(series: npt.ArrayLike, *, chunk_rows: int = _MK_CHUNK_ROWS) -> MannKendallResult:
    r"""Mann-Kendall trend test on every row of an ``n × T`` matrix, tie-corrected.

    For a row :math:`x_1, \dots, x_T` (oldest first):

    .. math::

        S = \sum_{i<j} \operatorname{sign}(x_j - x_i), \qquad
        \operatorname{Var}(S) = \frac{T(T-1)(2T+5) - \sum_g t_g (t_g-1)(2t_g+5)}{18},

    where :math:`t_g` is the size of the g-th group of tied values in the row. The normal
    score uses a continuity correction,

    .. math::

        z = \begin{cases} (S-1)/\sqrt{\operatorname{Var}(S)} & S > 0 \\
                          0 & S = 0 \\
                          (S+1)/\sqrt{\operatorname{Var}(S)} & S < 0, \end{cases}
        \qquad p = 2\,(1 - \Phi(|z|)).

    Assumptions: under the null the values are exchangeable over time (no trend, no serial
    correlation); the normal approximation is good from about ``T = 10``, the minimum ArcGIS
    asks of a space-time cube. Serially correlated series (overlapping Gi* neighbourhoods do
    not cause this; slowly drifting conflict does) make the test anti-conservative.

    Parameters
    ----------
    series
        ``n × T`` finite values, one series per row, oldest first (a 1-D array is one row).
    chunk_rows
        Rows processed at once. The cost is ``T(T−1)/2`` comparisons per row (1,326 for
        52 weekly bins), done on ``int8`` dense ranks per chunk so 100k × 52 needs a few MB.

    Returns
    -------
    MannKendallResult

    Notes
    -----
    ``S`` is computed on dense within-row ranks, which preserve every ``sign(x_j − x_i)``
    exactly (ties included); the tie groups come from the same per-row sort.

    References
    ----------
    Mann, H. B. (1945). Nonparametric tests against trend. *Econometrica* 13(3), 245–259.

    Kendall, M. G. (1975). *Rank Correlation Methods*, 4th ed. Charles Griffin, London.

    Gilbert, R. O. (1987). *Statistical Methods for Environmental Pollution Monitoring*,
    ch. 16. Van Nostrand Reinhold, New York. (Tie-corrected variance, continuity correction.)

    Esri. *How Emerging Hot Spot Analysis works*, ArcGIS Pro documentation (Space Time Pattern
    Mining toolbox): the Mann-Kendall test on each location's Gi* z-score series.

    Examples
    --------
    >>> r = mann_kendall([[1.0, 3.0, 2.0, 4.0], [1.0, 2.0, 2.0, 3.0]])
    >>> r.s.tolist(), np.round(r.variance * 18).tolist()
    ([4, 5], [156.0, 138.0])
    >>> np.round(r.z, 4).tolist(), np.round(r.tau, 4).tolist()
    ([1.019, 1.4446], [0.6667, 0.9129])
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError("series must be an n × T matrix")
    if not np.isfinite(x).all():
        raise ValueError("series must be finite")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    n, t_bins = x.shape
    s = np.zeros(n, dtype=np.int64)
    variance_ties = np.zeros(n, dtype=np.float64)
    pair_ties = np.zeros(n, dtype=np.float64)
    if t_bins >= 2:
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            ranks, v_ties, p_ties = _ranks_and_ties(x[start:stop])
            block_s = np.zeros(stop - start, dtype=np.int64)
            for lag in range(1, t_bins):
                block_s += np.sign(ranks[:, lag:] - ranks[:, :-lag]).sum(axis=1, dtype=np.int64)
            s[start:stop] = block_s
            variance_ties[start:stop] = v_ties
            pair_ties[start:stop] = p_ties
    variance = (t_bins * (t_bins - 1) * (2 * t_bins + 5) - variance_ties) / 18.0
    # A constant row has Var(S) = 0 up to rounding of the tie sum; both are integers / 18.
    variance = np.where(variance > 0.5 / 18.0, variance, 0.0)
    sd = np.sqrt(variance)
    corrected = (s - np.sign(s)).astype(np.float64)
    z = np.zeros(n, dtype=np.float64)
    np.divide(corrected, sd, out=z, where=sd > 0)
    p_value = np.asarray(special.erfc(np.abs(z) / np.sqrt(2.0)), dtype=np.float64)
    pairs = t_bins * (t_bins - 1) / 2.0
    tau_denominator = np.sqrt(pairs * np.maximum(pairs - pair_ties, 0.0))
    tau = np.zeros(n, dtype=np.float64)
    np.divide(s.astype(np.float64), tau_denominator, out=tau, where=tau_denominator > 0)
    return MannKendallResult(s=s, variance=variance, z=z, p_value=p_value, tau=tau)


def _trailing_run(flags: BoolArray) -> IntArray:
    """Length of the run of ``True`` that ends in the last column, per row."""
    reversed_flags = flags[:, ::-1]
    first_false = np.argmin(reversed_flags, axis=1)
    run = np.where(reversed_flags.all(axis=1), flags.shape[1], first_false)
    return np.asarray(run, dtype=np.int64)


def _categories(
    hot: BoolArray, cold: BoolArray, trend_z: FloatArray, trend_p: FloatArray, trend_alpha: float
) -> CodeArray:
    """Category codes from per-bin hot/cold flags and the trend (rules in :func:`classify`)."""
    n, t_bins = hot.shape
    if t_bins == 0:
        return np.zeros(n, dtype=np.int8)
    hot_bins = hot.sum(axis=1)
    cold_bins = cold.sum(axis=1)
    last_hot = hot[:, -1]
    last_cold = cold[:, -1]
    last_quiet = ~last_hot & ~last_cold
    # "At least 90 % of the bins", exactly, in integers: no floor(0.9 T), no float ratio.
    mostly_hot = 10 * hot_bins >= 9 * t_bins
    mostly_cold = 10 * cold_bins >= 9 * t_bins
    significant = trend_p < trend_alpha
    rising = significant & (trend_z > 0)
    falling = significant & (trend_z < 0)
    steady = ~rising & ~falling
    run_hot = _trailing_run(hot)
    run_cold = _trailing_run(cold)

    def family(
        last: BoolArray,
        mostly: BoolArray,
        count: IntArray,
        run: IntArray,
        opposite: IntArray,
        stronger: BoolArray,
        weaker: BoolArray,
    ) -> list[BoolArray]:
        # The order of this list is the order the rules are tested in (classify, decision c).
        lasting = last & mostly
        recent = last & ~mostly
        pure = recent & (opposite == 0)
        return [
            lasting & stronger,  # intensifying
            lasting & steady,  # persistent
            lasting & weaker,  # diminishing
            recent & (opposite > 0),  # oscillating
            pure & (count == 1),  # new
            pure & (count >= 2) & (count == run),  # consecutive
            pure & (count > run),  # sporadic
            last_quiet & mostly,  # historical
        ]

    cat = EmergingCategory
    codes = [
        cat.INTENSIFYING_HOT,
        cat.PERSISTENT_HOT,
        cat.DIMINISHING_HOT,
        cat.OSCILLATING_HOT,
        cat.NEW_HOT,
        cat.CONSECUTIVE_HOT,
        cat.SPORADIC_HOT,
        cat.HISTORICAL_HOT,
        cat.INTENSIFYING_COLD,
        cat.PERSISTENT_COLD,
        cat.DIMINISHING_COLD,
        cat.OSCILLATING_COLD,
        cat.NEW_COLD,
        cat.CONSECUTIVE_COLD,
        cat.SPORADIC_COLD,
        cat.HISTORICAL_COLD,
    ]
    conditions = family(last_hot, mostly_hot, hot_bins, run_hot, cold_bins, rising, falling)
    # Cold mirror: a cold spot intensifies when its z falls (grows more negative).
    conditions += family(last_cold, mostly_cold, cold_bins, run_cold, hot_bins, falling, rising)
    selected = np.select(conditions, [c.code for c in codes], default=cat.NO_PATTERN.code)
    return np.asarray(selected, dtype=np.int8)


def _significant_bins(
    z: FloatArray, p_value: FloatArray, alpha: float
) -> tuple[BoolArray, BoolArray]:
    significant = p_value < alpha
    return significant & (z > 0), significant & (z < 0)


def _two_sided_p(z: FloatArray) -> FloatArray:
    return np.asarray(special.erfc(np.abs(z) / np.sqrt(2.0)), dtype=np.float64)


def classify(
    z: npt.ArrayLike,
    p_value: npt.ArrayLike,
    trend: MannKendallResult,
    *,
    alpha: float = 0.10,
    trend_alpha: float = 0.05,
) -> CodeArray:
    """Emerging hot spot category of each cell from its per-bin Gi* results and its trend.

    A bin is **hot** when ``p_value < alpha`` and ``z > 0``, **cold** when ``p_value < alpha``
    and ``z < 0``. With ``T`` bins, ``h`` hot bins, ``c`` cold bins, "final" the last bin, and
    the trend *rising* / *falling* when ``trend.p_value < trend_alpha`` and ``trend.z`` is
    positive / negative, the hot patterns are (ArcGIS Pro, *How Emerging Hot Spot Analysis
    works*, made exact):

    ==============  ================================================================
    intensifying    final hot, ``h/T ≥ 90 %``, trend rising
    persistent      final hot, ``h/T ≥ 90 %``, no significant trend
    diminishing     final hot, ``h/T ≥ 90 %``, trend falling
    oscillating     final hot, ``h/T < 90 %``, some earlier bin cold
    new             final hot and it is the only significant bin (hot or cold)
    consecutive     final hot, never cold, the hot bins are one unbroken run of ≥ 2 bins
                    ending in the final bin, ``h/T < 90 %``
    sporadic        final hot, never cold, ``h/T < 90 %``, a hot bin before a gap
    historical      final bin neither hot nor cold, ``h/T ≥ 90 %``
    ==============  ================================================================

    Cold patterns mirror them with hot and cold swapped and the trend's sign reversed (an
    *intensifying* cold spot has a falling z). Everything else is no pattern.

    Decisions where the references (ArcGIS's prose, R ``sfdep::emerging_hotspot_analysis``
    and its ports) disagree or are silent, each pinned by a test:

    (a) **90 %** means ``h / T ≥ 0.9``, tested in integers as ``10 h ≥ 9 T``. With ``T = 52``
        weekly bins ``floor(0.9 T) = 46`` would admit 46 hot weeks, which is 88.5 %: the
        floor rounds the requirement *down*, so a threshold named 90 % would not mean 90 %.
        The ratio is also what ArcGIS's prose says ("90 percent of the time-step intervals").
    (b) **Intensifying, persistent and diminishing need the final bin hot.** ArcGIS requires
        it of intensifying and diminishing but not persistent, and then "historical" (final
        bin not hot, ≥ 90 % hot) overlaps "persistent". Here the final bin separates them: a
        place that was hot 90 % of the time and is hot now is persistent; if it is no longer
        significant it is historical. For protection work "is it still hot?" is the first
        question. Historical further needs the final bin *not cold*: a final bin of the
        opposite sign puts the cell in that sign's family (below).
    (c) **Rule order.** The family is chosen by the final bin (hot → hot patterns, cold →
        cold patterns, neither → historical or no pattern), so current status always wins.
        Within a family: the ≥ 90 % patterns first (intensifying, persistent, diminishing),
        then oscillating (any bin of the opposite sign), then new, consecutive, sporadic. So
        a cell that was once cold and is hot only now is *oscillating*, not new, as in
        ``sfdep`` (whose "new" needs a single significant bin of either sign): the flip is
        the more informative story. The rules are then mutually exclusive and exhaustive.
    (d) **Per-bin significance** is the two-sided p-value of Gi* at ``alpha`` (default 0.10,
        ArcGIS's 90 % confidence), so a hot bin has ``z > 1.645`` (which is
        :mod:`geo.hotspots`' one-sided ``HOT_95`` or stronger). No false-discovery
        correction is applied per bin, as in ``sfdep``: the categories already require a
        pattern across bins, and BH over 100k cells per week would leave sparse weekly data
        with almost no hot bins. Callers who want it pass BH-adjusted p-values as
        ``p_value``.

    Parameters
    ----------
    z
        Gi* z-scores, ``n × T`` (oldest bin first).
    p_value
        Per-bin p-values, ``n × T`` (two-sided normal p of ``z`` in :func:`emerging_hotspots`).
    trend
        Mann-Kendall result of each cell's z series (:func:`mann_kendall`).
    alpha
        Per-bin significance level (strict ``p < alpha``).
    trend_alpha
        Significance level of the trend (strict ``p < trend_alpha``).

    Returns
    -------
    numpy.ndarray
        ``int8`` codes of :class:`EmergingCategory`, length ``n``.

    References
    ----------
    Esri. *How Emerging Hot Spot Analysis works*, ArcGIS Pro documentation, Space Time Pattern
    Mining toolbox.

    Parry, J. *sfdep: Spatial Dependence for Simple Features*, R package,
    ``emerging_hotspot_analysis()``.

    Examples
    --------
    >>> z = np.array([[0.0] * 7 + [3.0] * 3, [3.0] * 9 + [0.0]])
    >>> codes = classify(z, 2 * special.ndtr(-np.abs(z)), mann_kendall(z))
    >>> [EmergingCategory.from_code(c).value for c in codes]
    ['consecutive_hot', 'historical_hot']
    """
    z_arr = np.asarray(z, dtype=np.float64)
    p_arr = np.asarray(p_value, dtype=np.float64)
    if z_arr.ndim != 2 or z_arr.shape != p_arr.shape:
        raise ValueError("z and p_value must be n × T matrices of the same shape")
    if trend.z.shape != (z_arr.shape[0],):
        raise ValueError("trend must have one result per row of z")
    hot, cold = _significant_bins(z_arr, p_arr, alpha)
    return _categories(hot, cold, trend.z, trend.p_value, trend_alpha)


def _gi_star_z_by_bin(values: FloatArray, weights: KRingWeights) -> FloatArray:
    """Gi* z-scores of every column (time bin) of ``values`` with one sparse mat-mat product.

    For column ``t``: ``z_it = (Σ_j w_ij x_jt − x̄_t W_i) / (s_t √((n S1_i − W_i²)/(n−1)))``
    with ``W_i = Σ_j w_ij``, ``S1_i = Σ_j w_ij²`` (``= W_i`` for binary weights), ``x̄_t`` and
    ``s_t`` (population, divisor ``n``) of column ``t``; a constant column gives ``z = 0``.

    This MUST agree with :func:`geo.hotspots.gi_star_z` column by column (tested in
    ``tests/unit/test_emerging.py``); it exists to do all bins in one product and is to be
    replaced by a call to a vectorised ``geo.hotspots`` helper once one exists.
    """
    n, t_bins = values.shape
    z = np.zeros((n, t_bins), dtype=np.float64)
    if n < 2 or t_bins == 0:
        return z
    matrix = weights.matrix
    w_sum = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    s1 = np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float64).ravel()
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    # Compare extremes, not the variance: a constant 0.1 has a two-pass variance of ~1e-34.
    std[~(values.max(axis=0) > values.min(axis=0))] = 0.0
    numerator = np.asarray(matrix @ values, dtype=np.float64)
    numerator -= w_sum[:, None] * mean[None, :]
    spread = np.sqrt(np.maximum(n * s1 - w_sum * w_sum, 0.0) / (n - 1))
    denominator = spread[:, None] * std[None, :]
    np.divide(numerator, denominator, out=z, where=denominator > 0)
    return z


def _scatter_trend(subset: MannKendallResult, rows: npt.NDArray[np.bool_]) -> MannKendallResult:
    """A Mann-Kendall result for all rows, from one computed on ``rows``: the others get a
    zero statistic and p = 1 (no trend)."""
    n = rows.size

    def spread(values: FloatArray, fill: float) -> FloatArray:
        out = np.full(n, fill, dtype=np.float64)
        out[rows] = values
        return out

    s_full = np.zeros(n, dtype=np.asarray(subset.s).dtype)
    s_full[rows] = subset.s
    return MannKendallResult(
        s=s_full,
        variance=spread(np.asarray(subset.variance, dtype=np.float64), 0.0),
        z=spread(subset.z, 0.0),
        p_value=spread(subset.p_value, 1.0),
        tau=spread(subset.tau, 0.0),
    )


def emerging_hotspots(
    intensity_cube: npt.ArrayLike,
    counts_cube: npt.ArrayLike,
    weights: KRingWeights,
    *,
    alpha: float = 0.10,
    trend_alpha: float = 0.05,
    min_local_count: int = 3,
    fdr: bool = True,
) -> EmergingResult:
    r"""Emerging hot spot analysis of a space-time cube.

    1. Per bin ``t``, the Gi* z-score of the intensity column (binary k-ring weights, focal cell
       included), as :func:`geo.hotspots.gi_star_z`:

       .. math::

           z_{it} = \frac{\sum_j w_{ij} x_{jt} - \bar{x}_t W_i}
                         {s_t \sqrt{(n W_i - W_i^2)/(n-1)}}.

       Each bin is a separate spatial analysis (no time-lagged neighbours): a bin's z compares
       a neighbourhood with the rest of the AOR *in that bin*.
    2. Two-sided p-value ``2(1 − Φ(|z|))``, Benjamini–Hochberg adjusted across the cells of
       each bin when ``fdr`` (the default: uncorrected, ~6 % of cells of pure noise come out
       "sporadic"); a bin is hot/cold when ``p < alpha`` and ``z``
       is positive/negative — and, for hot, only if the neighbourhood holds at least
       ``min_local_count`` incidents in that bin (the guard of :func:`geo.hotspots.hotspots`:
       in sparse weekly data one lone incident gives its neighbourhood ``z ≫ 3``).
    3. Mann-Kendall on each cell's z series (:func:`mann_kendall`).
    4. :func:`classify`. A cell whose neighbourhood never holds ``min_local_count`` incidents in
       any bin is no pattern (cold patterns included: "quiet" where nothing ever happens nearby
       says nothing).

    Parameters
    ----------
    intensity_cube
        Analysed variable (e.g. severity-weighted incidents) per cell and bin, ``n × T``,
        rows aligned with ``weights.cells`` (:func:`space_time_cube`).
    counts_cube
        Incidents per cell and bin, ``n × T`` (feeds only the minimum local count).
    weights
        Binary k-ring weights including the focal cell (:func:`geo.weights.kring_weights`).
    alpha, trend_alpha
        Per-bin and trend significance levels (see :func:`classify`).
    min_local_count
        Incidents a neighbourhood must hold in a bin for that bin to be hot.
    fdr
        Control the false discovery rate per bin (Benjamini & Hochberg 1995) before
        classifying; ``False`` gives the uncorrected per-bin test (as sfdep).

    Returns
    -------
    EmergingResult

    References
    ----------
    Ord, J. K. and Getis, A. (1995). Local spatial autocorrelation statistics: distributional
    issues and an application. *Geographical Analysis* 27(4), 286–306.

    Esri. *How Emerging Hot Spot Analysis works*, ArcGIS Pro documentation.
    """
    intensity = np.asarray(intensity_cube, dtype=np.float64)
    counts = np.asarray(counts_cube)
    if intensity.ndim != 2 or intensity.shape[0] != weights.n:
        raise ValueError(f"intensity_cube must be {weights.n} × T, got {intensity.shape}")
    if counts.shape != intensity.shape:
        raise ValueError("counts_cube and intensity_cube must have the same shape")
    if not np.isfinite(intensity).all():
        raise ValueError("intensity_cube must be finite")
    if min_local_count < 0:
        raise ValueError("min_local_count must not be negative")
    intensity = np.ascontiguousarray(intensity)
    z = _gi_star_z_by_bin(intensity, weights)
    p_value = _two_sided_p(z)
    if fdr and p_value.size:
        p_value = np.column_stack(
            [benjamini_hochberg(p_value[:, t]) for t in range(p_value.shape[1])]
        )
    hot, cold = _significant_bins(z, p_value, alpha)
    if min_local_count > 0:
        local_count = np.asarray(
            weights.matrix @ np.ascontiguousarray(counts, dtype=np.float64), dtype=np.float64
        )
        # Neighbourhood sums of whole numbers; the margin absorbs rounding only.
        enough = local_count >= min_local_count - 0.5
        hot &= enough
        active = np.asarray(enough.any(axis=1), dtype=bool)
    else:
        active = np.ones(weights.n, dtype=bool)
    # Only cells whose neighbourhood ever saw enough incidents can have a pattern; the trend
    # test (the costliest step) runs on those rows alone.
    trend = _scatter_trend(mann_kendall(z[active]), active)
    category = _categories(hot, cold, trend.z, trend.p_value, trend_alpha)
    category[~active] = EmergingCategory.NO_PATTERN.code
    return EmergingResult(
        cells=weights.cells,
        category=category,
        z_score=z,
        hot_bins=hot.sum(axis=1).astype(np.int64),
        cold_bins=cold.sum(axis=1).astype(np.int64),
        last_bin_hot=hot[:, -1].copy() if hot.shape[1] else np.zeros(weights.n, dtype=bool),
        last_bin_cold=cold[:, -1].copy() if cold.shape[1] else np.zeros(weights.n, dtype=bool),
        trend_z=trend.z,
        trend_p=trend.p_value,
        trend_tau=trend.tau,
        active=active,
        alpha=alpha,
        trend_alpha=trend_alpha,
        min_local_count=min_local_count,
    )
