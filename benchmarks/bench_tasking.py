"""Benchmark tasking on the demo scenario: greedy maximum coverage against nearest-gaps-first.

Loads the CAR demo into a scratch embedded database (units, AORs and bases, the UCDP history,
the protected sites and the simulated patrol tracks, with their coverage), then builds each
company's gaps at resolution 7 from:

* the threat of the CAR history: hot and emerging hot cells of the 2018–2022 picture of every
  sector (Gi* over UCDP events, ``as_of`` 2023-01-01, 1,826 days) — the current 30-day picture
  of the demo holds a handful of incidents, too few to task against;
* the protected sites;
* the last presence the demo's patrol tracks left (``cell_last_presence``), judged now,

ranked by ``geo.gaps.find_gaps`` and assigned to the company whose AOR holds them. For every
company with at least three gaps, its available patrols — two foot patrols (20 km, 8 h, 8 stops)
and one mobile patrol (150 km, 10 h, 12 stops) from the company base — are routed by
``geo.tasking.suggest_routes`` and by ``geo.tasking.nearest_first``. Prints, per company and in
total, the gap threat covered, the patrol-km, and threat covered per patrol-km.

    .venv/bin/python benchmarks/bench_tasking.py [--quick]

``--quick`` routes the first eight companies only. Asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select

from geo.coverage import sensing_k
from geo.gaps import find_gaps, threat_cells
from geo.tasking import PatrolAsset, TaskingPlan, nearest_first, suggest_routes
from server.auth.passwords import PasswordService
from server.coverage import service as coverage
from server.db import migrate
from server.db.session import create_engine_for, create_session_factory, transaction
from server.demo import setup
from server.hotspots import service as hotspots
from server.patrols.enums import SENSING_RADIUS_M, TYPICAL_SPEED_KMH, PatrolType
from server.settings import AuthSettings, HotspotSettings, Settings
from server.sites.models import ProtectedSite, ProtectedSiteCell
from server.units.models import Unit

RESOLUTION = 7
AS_OF = datetime(2023, 1, 1, tzinfo=UTC)
WINDOW_DAYS = 1826
EMERGING_THREATS = set(coverage.EMERGING_THREATS)


def assets(base: tuple[float, float], detour: float) -> list[PatrolAsset]:
    def patrol(kind: PatrolType, range_km: float, hours: float, stops: int) -> PatrolAsset:
        return PatrolAsset(
            base_lon=base[0],
            base_lat=base[1],
            sensing_k=sensing_k(SENSING_RADIUS_M[kind], RESOLUTION),
            speed_kmh=TYPICAL_SPEED_KMH[kind],
            max_range_km=range_km,
            max_duration_h=hours,
            dwell_h=20 / 60,
            max_stops=stops,
            detour_factor=detour,
        )

    foot = patrol(PatrolType.FOOT, 20.0, 8.0, 8)
    return [foot, foot, patrol(PatrolType.MOBILE, 150.0, 10.0, 12)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first eight companies only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-tasking-") as scratch:
        settings = Settings.load(
            data_dir=Path(scratch),
            hotspots=HotspotSettings(windows_days=[30], background=False),
            auth=AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1),
        )
        engine = create_engine_for(settings)
        migrate.upgrade(engine)
        factory = create_session_factory(engine)
        started = time.perf_counter()
        setup.load(
            session_factory=factory,
            settings=settings,
            passwords=PasswordService(settings.auth),
            ucdp_file=setup.default_ucdp_file(),
            say=lambda _message: None,
        )
        print(f"demo loaded in {time.perf_counter() - started:.0f} s")
        now = datetime.now(UTC)
        with transaction(factory) as session:
            hot_cells, hot_confidence, emerging = [], [], []
            for sector in session.scalars(select(Unit).where(Unit.kind == "sector")):
                aor = hotspots.current_aor_for_unit(session, sector)
                assert aor is not None
                picture = hotspots.picture(
                    session=session,
                    aor=aor,
                    resolution=RESOLUTION,
                    window_days=WINDOW_DAYS,
                    as_of=AS_OF,
                    audience=hotspots.FULL,
                    settings=settings,
                )
                for row in picture.rows:
                    if row["confidence"] > 0:
                        hot_cells.append(row["cell"])
                        hot_confidence.append(row["confidence"])
                    if row["emerging"] in EMERGING_THREATS:
                        emerging.append(row["cell"])
            site_rows = session.execute(
                select(ProtectedSiteCell.cell, ProtectedSite.population)
                .join(ProtectedSite, ProtectedSite.id == ProtectedSiteCell.site_id)
                .where(ProtectedSiteCell.resolution == RESOLUTION)
            ).all()
            threatened = threat_cells(
                hot_cells=hot_cells,
                hot_confidence=hot_confidence,
                emerging_cells=emerging,
                site_cells=[c for c, _ in site_rows],
                site_population=[float("nan") if p is None else float(p) for _, p in site_rows],
                policy=coverage.gap_policy(settings),
            )
            presence = coverage.last_presence(
                session, resolution=RESOLUTION, cells=threatened.cells.tolist()
            )
            last_s = np.array(
                [
                    presence[int(c)][0].timestamp() if int(c) in presence else np.nan
                    for c in threatened.cells
                ]
            )
            gaps = find_gaps(threatened, last_s, now.timestamp(), coverage.gap_policy(settings))
            owner = coverage.responsible_units(
                session, cells=gaps.cells, resolution=RESOLUTION, settings=settings
            )
            companies = session.scalars(
                select(Unit).where(Unit.kind == "company").order_by(Unit.code)
            ).all()
        print(
            f"{threatened.cells.size:,} threatened cells at res {RESOLUTION} "
            f"({len(hot_cells):,} hot in the 2018–2022 picture, {len(site_rows)} site cells); "
            f"{len(gaps):,} gaps, {np.unique(owner[owner >= 0]).size} companies with gaps"
        )
        header = f"{'company':<22}{'gaps':>6}{'threat':>10}  {'greedy':>26}  {'nearest first':>26}"
        print(header)
        print(
            f"{'':<22}{'':>6}{'':>10}  {'covered    km  per km':>26}  {'covered    km  per km':>26}"
        )
        totals = {"greedy": [0.0, 0.0], "nearest": [0.0, 0.0]}
        timings = []
        routed = 0
        for company in companies:
            mine = np.flatnonzero(owner == company.id)
            if mine.size < 3 or company.base_location is None:
                continue
            if args.quick and routed >= 8:
                break
            routed += 1
            base = (company.base_location.x, company.base_location.y)
            patrols = assets(base, settings.coverage.detour_factor)
            cells, score = gaps.cells[mine], gaps.score[mine]
            started = time.perf_counter()
            greedy: TaskingPlan = suggest_routes(cells, score, patrols)
            timings.append(time.perf_counter() - started)
            naive = nearest_first(cells, score, patrols)
            for name, plan in (("greedy", greedy), ("nearest", naive)):
                totals[name][0] += plan.threat_covered
                totals[name][1] += plan.km
            print(
                f"{company.code:<22}{mine.size:>6}{score.sum():>10.0f}  "
                f"{greedy.threat_covered:>9.0f}{greedy.km:>7.0f}{greedy.threat_per_km:>8.1f}  "
                f"  {naive.threat_covered:>9.0f}{naive.km:>7.0f}{naive.threat_per_km:>8.1f}"
            )
        g_cov, g_km = totals["greedy"]
        n_cov, n_km = totals["nearest"]
        print(
            f"\ntotal over {routed} companies: greedy covers {g_cov:,.0f} in {g_km:,.0f} km "
            f"({g_cov / g_km:.1f} per km); nearest first {n_cov:,.0f} in {n_km:,.0f} km "
            f"({n_cov / n_km:.1f} per km)"
        )
        print(
            f"greedy / nearest: threat covered {g_cov / n_cov:.2f}×, threat per patrol-km "
            f"{(g_cov / g_km) / (n_cov / n_km):.2f}×"
        )
        print(
            f"suggest_routes time per company: median {np.median(timings) * 1e3:.1f} ms, "
            f"max {max(timings) * 1e3:.1f} ms"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
