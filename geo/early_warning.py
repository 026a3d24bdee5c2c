"""Early warning per cell: a surge against the cell's own past, and a precursor index.

Both look at a cell against its *own* history, not against its neighbours (that is Gi*'s job):
a village that has been quiet for months and sees three incidents this week matters even when
the town next door sees ten every week. The precursor index watches the incident categories
that tend to come before mass violence (incitement, threats, armed-group movement,
displacement), so a cell can be flagged before killings start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = ["SurgeResult", "precursor_flag", "precursor_index", "surge"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class SurgeResult:
    """Surge test of each cell's current window against its baseline (arrays of length ``n``).

    Attributes
    ----------
    current
        Incidents in the current window (``int64``).
    baseline_rate
        ``λ``, the expected incidents per window from the cell's shrunk history.
    p_value
        ``P(X ≥ current)`` for ``X ~ Poisson(λ)``; 1 where ``current`` is 0.
    score
        ``−log10(p_value)``, capped at ``max_score``: 2 is "1 in 100", 3 "1 in 1000".
    flagged
        ``p_value < alpha`` and ``current ≥ min_count``.
    """

    current: IntArray
    baseline_rate: FloatArray
    p_value: FloatArray
    score: FloatArray
    flagged: BoolArray


def _counts(values: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all() or (arr.size and arr.min() < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return arr


def surge(
    current: npt.ArrayLike,
    baseline: npt.ArrayLike,
    *,
    prior_rate: float = 0.1,
    alpha: float = 0.01,
    min_count: int = 2,
    max_score: float = 30.0,
) -> SurgeResult:
    r"""Flag cells whose current window is improbably busy for their own past.

    With ``c_i`` incidents in the current window and ``b_{i1} … b_{iB}`` in each of ``B`` past
    windows of the same length,

    .. math::

        \lambda_i = \frac{\sum_{k=1}^{B} b_{ik} + \rho}{B + 1}, \qquad
        p_i = P(X \ge c_i \mid X \sim \text{Poisson}(\lambda_i))
            = \texttt{pdtrc}(c_i - 1, \lambda_i),

    where ``ρ = prior_rate``. ``λ_i`` is the posterior mean of the cell's rate under a
    conjugate Gamma(ρ, 1) prior — one pseudo-window holding ``ρ`` incidents — so it shrinks
    short or empty histories towards ``ρ`` and never reaches 0: a cell with no history gets
    ``λ = ρ/(B+1)`` and a finite p-value, while a long history dominates the prior. The score
    is ``−log10 p`` capped at ``max_score``; a cell is flagged when ``p < alpha`` and
    ``c_i ≥ min_count`` (a single incident where none was seen is improbable under a tiny
    ``λ`` but is not yet a surge).

    Assumptions: counts in a window are Poisson with a rate constant over the baseline (no
    seasonality, no trend) and windows are independent. Real incident counts are
    over-dispersed (clustered in time), so p-values are optimistic for busy cells; ``alpha``
    is a screening threshold, not a calibrated error rate. The plug-in ``λ`` also ignores its
    own uncertainty (the Gamma-Poisson predictive would be negative binomial).

    Parameters
    ----------
    current
        Incidents per cell in the current window, length ``n``.
    baseline
        Incidents per cell in each of ``B`` past windows of the same length, ``n × B``
        (``B`` may be 0: then ``λ = ρ``).
    prior_rate
        ``ρ > 0``: expected incidents in one window for a cell with no history. A natural
        choice is the AOR-wide mean per cell per window.
    alpha
        Flagging threshold on the p-value.
    min_count
        Fewest incidents in the current window for a flag.
    max_score
        Cap on the score (``p`` below ``10^-max_score`` underflows and means the same).

    Returns
    -------
    SurgeResult

    References
    ----------
    Farrington, C. P., Andrews, N. J., Beale, A. D. and Catchpole, M. A. (1996). A statistical
    algorithm for the early detection of outbreaks of infectious disease. *J. R. Stat. Soc. A*
    159(3), 547–563. (Observed count against a baseline of the same unit's past windows.)

    Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., §2.6 (Gamma-Poisson model).

    Examples
    --------
    A quiet cell that jumps, and a busy cell at its usual level:

    >>> r = surge([4, 4], [[0, 0, 1, 0], [5, 3, 4, 4]])
    >>> np.round(r.baseline_rate, 3).tolist(), r.flagged.tolist()
    ([0.22, 3.22], [True, False])
    """
    c = _counts(current, "current").ravel()
    b = _counts(baseline, "baseline")
    if b.ndim == 1 and c.size == 0:
        b = b.reshape(0, 0)
    if b.ndim != 2 or b.shape[0] != c.size:
        raise ValueError(f"baseline must be n × B with n = {c.size}, got {b.shape}")
    if not np.array_equal(c, np.rint(c)):
        raise ValueError("current must hold whole numbers")
    if not prior_rate > 0:
        raise ValueError("prior_rate must be positive")
    if max_score <= 0:
        raise ValueError("max_score must be positive")
    windows = b.shape[1]
    rate = (b.sum(axis=1) + prior_rate) / (windows + 1.0)
    p_value = np.ones(c.size, dtype=np.float64)
    busy = c > 0
    p_value[busy] = np.clip(special.pdtrc(c[busy] - 1.0, rate[busy]), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        score = np.minimum(-np.log10(p_value), max_score)
    score = np.maximum(score, 0.0)
    flagged = (p_value < alpha) & (c >= min_count)
    return SurgeResult(
        current=c.astype(np.int64),
        baseline_rate=np.asarray(rate, dtype=np.float64),
        p_value=p_value,
        score=np.asarray(score, dtype=np.float64),
        flagged=np.asarray(flagged, dtype=bool),
    )


def precursor_index(
    current: npt.ArrayLike,
    baseline: npt.ArrayLike,
    category_weights: npt.ArrayLike,
    *,
    smoothing: float = 1.0,
) -> FloatArray:
    r"""Weighted excess of leading-indicator incidents over each cell's own baseline.

    For cell ``i`` and precursor category ``c`` (current count ``x_ic``, baseline mean per
    window ``μ_ic``, weight ``w_c``, smoothing ``s``):

    .. math::

        I_i = \sum_c w_c \, \max\!\Bigl(0,\ \log_2 \frac{x_{ic} + s}{\mu_{ic} + s}\Bigr).

    Each term counts *doublings over the cell's usual level* of one category, and only
    excesses count.

    Why a ratio to the cell's own baseline and not raw counts: precursors are reported very
    unevenly — a market town with an active radio station logs hate speech every week, a
    remote village almost never. Raw counts would rank the town first forever; the log ratio
    makes "four threats where there is usually none" and "forty where there are usually ten"
    comparable, and a chronic level that does not change scores 0. Why the log: it is
    scale-free, so categories with different base rates add on one scale, and one extreme
    category cannot swamp the others as a raw ratio would. Why ``max(0, ·)``: a fall in one
    category (displacement stopping because people have already fled) must not cancel a rise
    in another. ``s`` is a pseudo-count that keeps empty baselines finite: with ``s = 1`` a
    first incident against a zero baseline is one doubling, two are ``log2 3 ≈ 1.58``.

    Category weights come from the caller (which precursor categories exist and how much each
    leads violence is the taxonomy's business; the UN *Framework of Analysis for Atrocity
    Crimes* lists incitement, threats, armed-group movement and displacement among its
    indicators). Nothing here knows category codes.

    Parameters
    ----------
    current
        Incidents per precursor category in the current window, ``n × C``.
    baseline
        Mean incidents per window of the same length per category, ``n × C``.
    category_weights
        Non-negative weight per category, length ``C``.
    smoothing
        Pseudo-count ``s > 0``.

    Returns
    -------
    numpy.ndarray
        ``float64`` index per cell, ``≥ 0``; 0 when no category exceeds its baseline.

    References
    ----------
    United Nations (2014). *Framework of Analysis for Atrocity Crimes: A tool for prevention*.
    Office of the Special Adviser on the Prevention of Genocide.

    Examples
    --------
    Threats (weight 2) and displacement (weight 1): a quiet village with three threats, a town
    at its usual level, a place where displacement doubled:

    >>> current = [[3, 0], [10, 4], [0, 7]]
    >>> baseline = [[0.0, 0.0], [10.0, 4.0], [0.0, 3.0]]
    >>> np.round(precursor_index(current, baseline, [2.0, 1.0]), 3).tolist()
    [4.0, 0.0, 1.0]
    """
    x = _counts(current, "current")
    mu = _counts(baseline, "baseline")
    w = np.asarray(category_weights, dtype=np.float64)
    if x.ndim != 2 or mu.shape != x.shape:
        raise ValueError("current and baseline must be n × C matrices of the same shape")
    if w.shape != (x.shape[1],):
        raise ValueError(f"category_weights must have {x.shape[1]} values, got {w.shape}")
    if not np.isfinite(w).all() or (w.size and w.min() < 0):
        raise ValueError("category_weights must be finite and non-negative")
    if not smoothing > 0:
        raise ValueError("smoothing must be positive")
    excess = np.maximum(np.log2((x + smoothing) / (mu + smoothing)), 0.0)
    return np.asarray(excess @ w, dtype=np.float64)


def precursor_flag(index: npt.ArrayLike, threshold: float) -> BoolArray:
    """Cells whose precursor index reaches ``threshold`` (``index ≥ threshold``).

    The threshold is in weighted doublings: with unit weights, ``threshold = 2`` flags a cell
    where one precursor category quadrupled over its baseline, or two categories doubled.
    """
    return np.asarray(np.asarray(index, dtype=np.float64) >= threshold, dtype=bool)
