"""Protection gaps: threatened cells whose last patrol presence is older than their threat allows.

A cell is *threatened* when the threat picture flags it — a hot spot class, an emerging hot
pattern, a surge or precursor flag, a flash incident in the last hours — or when a protected
site (an IDP camp, a market, a water point) lies in it. Each reason adds to the cell's threat
``T`` (:class:`GapPolicy` holds the weights). The more threat, the shorter the time the cell
may go without presence:

.. math::

    \\mathrm{allowed}(c) = \\mathrm{clip}\\!\\left(\\frac{A}{T_c},\\ A_{\\min},\\ A\\right)
    \\cdot (f_{\\mathrm{site}} \\text{ if a protected site lies in } c \\text{ else } 1)

and the cell is a *gap* when the hours since its last presence ``h_c`` (capped at
``uncovered_cap_hours``; a cell never visited counts as the cap) exceed it. Gaps are ranked by

.. math::

    \\mathrm{score}(c) = T_c \\cdot h_c \\cdot E_c, \\qquad
    E_c = 1 + \\sum_{s \\in \\mathrm{sites}(c)} e_s, \\quad
    e_s = \\log_{10}\\!\\left(1 + \\frac{\\mathrm{population}_s}{100}\\right)
    \\ (\\text{or } 1 \\text{ when unknown}),

so an uncovered IDP camp of 10,000 people (``e ≈ 2``) weighs three times an empty cell of the
same threat. Plain arrays in, plain arrays out; the server reads the threat picture and the
last-presence table and hands them here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.cells import CellArray

__all__ = [
    "GapPolicy",
    "Gaps",
    "ThreatCells",
    "ThreatReason",
    "find_gaps",
    "site_exposure",
    "threat_cells",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ThreatReason(enum.IntFlag):
    """Why a cell is threatened; a cell's reasons are a bit mask of these."""

    HOT = 1
    EMERGING = 2
    SURGE = 4
    PRECURSOR = 8
    FLASH = 16
    SITE = 32

    @classmethod
    def names_of(cls, mask: int) -> list[str]:
        """The reasons in a mask, as lower-case names in definition order.

        >>> ThreatReason.names_of(ThreatReason.HOT | ThreatReason.SITE)
        ['hot', 'site']
        """
        return [str(member.name).lower() for member in cls if mask & member]

    @classmethod
    def parse(cls, name: str) -> ThreatReason:
        """A reason from its lower-case name (``ValueError`` for an unknown one)."""
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(str(m.name).lower() for m in cls)
            raise ValueError(f"unknown threat {name!r}; use one of {known}") from None


@dataclass(frozen=True)
class GapPolicy:
    """Threat weights and allowed gaps. The defaults are a starting point a mission tunes.

    Attributes
    ----------
    hot_weights
        Threat of a hot class at 90, 95 and 99 % confidence.
    emerging_weight, surge_weight, precursor_weight, flash_weight, site_weight
        Threat each flag adds. A surge, a precursor build-up and a flash incident are the
        signals an early-warning system exists for, so they weigh as much as a 95 % hot spot
        or more.
    base_allowed_hours
        ``A``: the longest any threatened cell may go without presence (a week).
    min_allowed_hours
        ``A_min``: however high the threat, a gap shorter than this is not raised.
    site_allowed_factor
        ``f_site``: a protected site in the cell shortens its allowed gap by this factor.
    uncovered_cap_hours
        Hours uncovered are capped here, and a cell never visited counts as this.
    """

    hot_weights: tuple[float, float, float] = (1.0, 2.0, 3.0)
    emerging_weight: float = 1.0
    surge_weight: float = 2.0
    precursor_weight: float = 2.0
    flash_weight: float = 3.0
    site_weight: float = 1.0
    base_allowed_hours: float = 168.0
    min_allowed_hours: float = 12.0
    site_allowed_factor: float = 0.5
    uncovered_cap_hours: float = 720.0

    def __post_init__(self) -> None:
        if not 0 < self.min_allowed_hours <= self.base_allowed_hours:
            raise ValueError("need 0 < min_allowed_hours <= base_allowed_hours")
        if not 0 < self.site_allowed_factor <= 1:
            raise ValueError("site_allowed_factor must lie in (0, 1]")
        if self.uncovered_cap_hours <= 0:
            raise ValueError("uncovered_cap_hours must be positive")


def site_exposure(population: npt.ArrayLike) -> FloatArray:
    """Exposure each protected site adds, ``log10(1 + population / 100)``; 1 when the
    population is unknown (NaN).

    >>> site_exposure([10_000, float("nan"), 0]).round(3).tolist()
    [2.004, 1.0, 0.0]
    """
    people = np.asarray(population, dtype=np.float64)
    known = np.log10(1.0 + np.where(np.isnan(people), 0.0, np.maximum(people, 0.0)) / 100.0)
    return np.where(np.isnan(people), 1.0, known)


@dataclass(frozen=True, eq=False)
class ThreatCells:
    """The threatened cells of one resolution, aligned with the sorted ``cells``.

    Attributes
    ----------
    cells
        Sorted unique cells.
    threat
        ``T``: the sum of the weights of the cell's reasons.
    reasons
        Bit mask of :class:`ThreatReason`.
    exposure
        ``E``: 1 plus what its protected sites add.
    """

    cells: CellArray
    threat: FloatArray
    reasons: IntArray
    exposure: FloatArray

    @property
    def has_site(self) -> npt.NDArray[np.bool_]:
        return np.asarray((self.reasons & int(ThreatReason.SITE)) != 0, dtype=bool)


def threat_cells(
    *,
    hot_cells: npt.ArrayLike = (),
    hot_confidence: npt.ArrayLike = (),
    emerging_cells: npt.ArrayLike = (),
    surge_cells: npt.ArrayLike = (),
    precursor_cells: npt.ArrayLike = (),
    flash_cells: npt.ArrayLike = (),
    site_cells: npt.ArrayLike = (),
    site_population: npt.ArrayLike = (),
    policy: GapPolicy | None = None,
) -> ThreatCells:
    """Combine the threat sources into one threat per cell.

    A cell may appear in a source several times (in the pictures of nested AORs, or with two
    flash incidents): each reason counts once per cell, the highest hot class wins, and every
    distinct protected site adds its exposure.

    Parameters
    ----------
    hot_cells, hot_confidence
        Cells with a hot class and its confidence code (1, 2, 3; others are ignored).
    emerging_cells, surge_cells, precursor_cells, flash_cells
        Cells with that flag.
    site_cells, site_population
        One entry per (protected site, cell it touches); population NaN when unknown.

    Examples
    --------
    >>> t = threat_cells(hot_cells=[7, 7], hot_confidence=[1, 3], flash_cells=[9],
    ...                  site_cells=[9], site_population=[float("nan")])
    >>> t.cells.tolist(), t.threat.tolist(), t.exposure.tolist()
    ([7, 9], [3.0, 4.0], [1.0, 2.0])
    >>> [ThreatReason.names_of(int(m)) for m in t.reasons]
    [['hot'], ['flash', 'site']]
    """
    rules = policy or GapPolicy()
    hot = np.asarray(hot_cells, dtype=np.int64)
    confidence = np.asarray(hot_confidence, dtype=np.int64)
    if hot.shape != confidence.shape:
        raise ValueError("hot_cells and hot_confidence must have the same length")
    sites = np.asarray(site_cells, dtype=np.int64)
    population = np.asarray(site_population, dtype=np.float64)
    if sites.shape != population.shape:
        raise ValueError("site_cells and site_population must have the same length")
    valid_hot = (confidence >= 1) & (confidence <= 3)
    hot, confidence = hot[valid_hot], confidence[valid_hot]
    flagged = {
        ThreatReason.EMERGING: np.asarray(emerging_cells, dtype=np.int64),
        ThreatReason.SURGE: np.asarray(surge_cells, dtype=np.int64),
        ThreatReason.PRECURSOR: np.asarray(precursor_cells, dtype=np.int64),
        ThreatReason.FLASH: np.asarray(flash_cells, dtype=np.int64),
    }
    cells = np.unique(np.concatenate([hot, sites, *flagged.values()]))
    n = cells.size
    threat = np.zeros(n)
    reasons = np.zeros(n, dtype=np.int64)
    exposure = np.ones(n)
    if n == 0:
        return ThreatCells(cells, threat, reasons, exposure)
    if hot.size:
        best = np.zeros(n, dtype=np.int64)
        np.maximum.at(best, np.searchsorted(cells, hot), confidence)
        weights = np.asarray((0.0, *rules.hot_weights))
        threat += weights[best]
        reasons |= np.where(best > 0, int(ThreatReason.HOT), 0)
    weight_of = {
        ThreatReason.EMERGING: rules.emerging_weight,
        ThreatReason.SURGE: rules.surge_weight,
        ThreatReason.PRECURSOR: rules.precursor_weight,
        ThreatReason.FLASH: rules.flash_weight,
    }
    for reason, where in flagged.items():
        if where.size:
            present = np.zeros(n, dtype=bool)
            present[np.searchsorted(cells, where)] = True
            threat += np.where(present, weight_of[reason], 0.0)
            reasons |= np.where(present, int(reason), 0)
    if sites.size:
        at = np.searchsorted(cells, sites)
        present = np.zeros(n, dtype=bool)
        present[at] = True
        threat += np.where(present, rules.site_weight, 0.0)
        reasons |= np.where(present, int(ThreatReason.SITE), 0)
        exposure += np.bincount(at, site_exposure(population), minlength=n)
    return ThreatCells(cells, threat, reasons, exposure)


@dataclass(frozen=True, eq=False)
class Gaps:
    """Gap cells, ranked: ``score`` descending (ties by cell), every array aligned.

    Attributes
    ----------
    cells, threat, reasons, exposure
        As in :class:`ThreatCells`, for the gap cells only.
    last_presence_s
        Last presence (seconds), NaN for a cell never visited.
    hours_uncovered
        ``h``: hours since the last presence, capped; the cap for a cell never visited.
    allowed_hours
        The gap the cell's threat allows.
    score
        ``T · h · E``.
    """

    cells: CellArray
    threat: FloatArray
    reasons: IntArray
    exposure: FloatArray
    last_presence_s: FloatArray
    hours_uncovered: FloatArray
    allowed_hours: FloatArray
    score: FloatArray

    def __len__(self) -> int:
        return int(self.cells.size)

    def take(self, index: npt.ArrayLike) -> Gaps:
        """The gaps at ``index`` (positions or a boolean mask), in that order."""
        i = np.asarray(index)
        return Gaps(
            self.cells[i],
            self.threat[i],
            self.reasons[i],
            self.exposure[i],
            self.last_presence_s[i],
            self.hours_uncovered[i],
            self.allowed_hours[i],
            self.score[i],
        )


def find_gaps(
    threatened: ThreatCells,
    last_presence_s: npt.ArrayLike,
    now_s: float,
    policy: GapPolicy | None = None,
) -> Gaps:
    """The threatened cells whose last presence is older than their threat allows, ranked.

    Parameters
    ----------
    threatened
        The threatened cells (:func:`threat_cells`).
    last_presence_s
        Last presence of each of ``threatened.cells`` (seconds), NaN where never present.
    now_s
        The moment the gaps are judged at (seconds). Presence after it counts as now.

    Examples
    --------
    Two cells of the same threat, one visited 100 h ago and one 10 h ago, one never visited
    with a protected site (its allowed gap halves, its exposure doubles):

    >>> t = threat_cells(hot_cells=[1, 2], hot_confidence=[2, 2], site_cells=[3],
    ...                  site_population=[float("nan")])
    >>> hour = 3600.0
    >>> g = find_gaps(t, [0.0, 90 * hour, float("nan")], now_s=100 * hour)
    >>> g.cells.tolist(), g.allowed_hours.tolist(), g.hours_uncovered.tolist()
    ([3, 1], [84.0, 84.0], [720.0, 100.0])
    >>> g.score.tolist()
    [1440.0, 200.0]
    """
    rules = policy or GapPolicy()
    last = np.asarray(last_presence_s, dtype=np.float64)
    if last.shape != threatened.cells.shape:
        raise ValueError("last_presence_s must have one entry per threatened cell")
    elapsed = np.maximum(0.0, (now_s - last) / 3600.0)
    hours = np.where(np.isnan(last), rules.uncovered_cap_hours, elapsed)
    hours = np.minimum(hours, rules.uncovered_cap_hours)
    with np.errstate(divide="ignore"):
        allowed = np.clip(
            rules.base_allowed_hours / threatened.threat,
            rules.min_allowed_hours,
            rules.base_allowed_hours,
        )
    allowed = np.where(threatened.has_site, allowed * rules.site_allowed_factor, allowed)
    score = threatened.threat * hours * threatened.exposure
    gap = (hours > allowed) & (threatened.threat > 0)
    index = np.flatnonzero(gap)
    order = index[np.lexsort((threatened.cells[index], -score[index]))]
    return Gaps(
        threatened.cells[order],
        threatened.threat[order],
        threatened.reasons[order],
        threatened.exposure[order],
        last[order],
        hours[order],
        allowed[order],
        score[order],
    )
