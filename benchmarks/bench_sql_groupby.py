"""Benchmark the SQL fallback: incidents per cell in PostGIS, stored H3 cell vs ST_HexagonGrid.

Builds its own database (dropped at the end), with one table of incident points over the
Central African Republic — a point geometry (SRID 4326) and its H3 cell at resolution 7 as a
``BIGINT`` — and times two ways of counting incidents per hexagon:

(a) stored cells: ``SELECT h3_res7, count(*) FROM incidents GROUP BY h3_res7``;
(b) PostGIS only: ``ST_HexagonGrid`` over the AOR's envelope joined to the points with
    ``ST_Intersects`` (GiST index on the points), ``GROUP BY`` the hexagon.

The hexagons of (b) are laid out in a Lambert azimuthal equal-area projection centred on the
CAR (a custom SRID added to this database's ``spatial_ref_sys``), so their edge length is in
metres and their area on the ground is exact: the edge is chosen so that a hexagon has the mean
area of the H3 resolution-7 cells holding the points (measured, ≈ 5.2 km²). The hexagons are
transformed back to SRID 4326 (vertex by vertex: still a partition) so the join uses the GiST
index on the stored points; the points are never transformed.

Points are generated with numpy (fixed seed, 70 % in Gaussian clusters, 30 % uniform), indexed
with ``geo.cells.index_points`` in chunks and loaded with one binary ``COPY``. Load time is
reported apart from query time. Prints best-of-N wall times (query + fetching the rows) and
the ratio; asserts nothing.

    .venv/bin/python benchmarks/bench_sql_groupby.py [--quick | --rows N] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from geo.cells import cell_boundary, index_points

T = TypeVar("T")

#: Central African Republic, roughly (west, south, east, north) in degrees.
CAR_BOX = (14.4, 2.2, 27.5, 11.0)
#: Lambert azimuthal equal-area centred on the CAR; user SRIDs live below 999000.
LAEA_SRID = 910_001
LAEA_PROJ4 = "+proj=laea +lat_0=6.6 +lon_0=20.95 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
RESOLUTION = 7
CHUNK = 1_000_000
SEED = 20240607

# PGCOPY binary framing (PostgreSQL docs, "COPY … Binary Format").
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
#: One row: field count, then (length, value) per field; the geometry is little-endian EWKB
#: (point with SRID), which PostGIS's binary input accepts as is.
ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("geom_len", ">i4"),
        ("byte_order", "u1"),
        ("wkb_type", "<u4"),
        ("srid", "<u4"),
        ("x", "<f8"),
        ("y", "<f8"),
        ("cell_len", ">i4"),
        ("cell", ">i8"),
    ]
)
EWKB_POINT_WITH_SRID = 0x20000001

GROUP_BY_CELL = "SELECT h3_res7, count(*) FROM incidents GROUP BY h3_res7"
# The envelope is densified before it is projected, or its projected bounding box would miss
# the bulge of its edges; the hexagons are projected back once (a materialised CTE), so the join
# is on the stored SRID 4326 points and their GiST index.
GRID = (
    "ST_HexagonGrid(%(edge)s, ST_Transform(ST_Segmentize("
    "ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326), 0.05), %(srid)s))"
)
GROUP_BY_HEXAGON = f"""
WITH hex AS MATERIALIZED (SELECT i, j, ST_Transform(geom, 4326) AS geom FROM {GRID})
SELECT hex.i, hex.j, count(*)
FROM hex JOIN incidents AS p ON ST_Intersects(hex.geom, p.geom)
GROUP BY hex.i, hex.j
"""  # noqa: S608 - constant SQL; the values are bound parameters


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Smallest wall time of ``repeat`` runs (seconds) and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def clustered_points(
    n: int, chunk: int
) -> Iterator[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """``n`` points over the CAR box in chunks: 70 % around 300 centres (σ ≈ 17 km), 30 %
    uniform; deterministic for :data:`SEED` whatever the chunk size."""
    west, south, east, north = CAR_BOX
    rng = np.random.default_rng(SEED)
    centres_lat = rng.uniform(south, north, 300)
    centres_lng = rng.uniform(west, east, 300)
    for index, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        part = np.random.default_rng([SEED, index])
        drawn = int(size * 1.1) + 100
        which = part.integers(0, 300, drawn)
        clustered = part.random(drawn) < 0.7
        lat = np.where(
            clustered,
            centres_lat[which] + part.normal(0, 0.15, drawn),
            part.uniform(south, north, drawn),
        )
        lng = np.where(
            clustered,
            centres_lng[which] + part.normal(0, 0.15, drawn),
            part.uniform(west, east, drawn),
        )
        inside = np.flatnonzero((lat > south) & (lat < north) & (lng > west) & (lng < east))[:size]
        assert inside.size == size
        yield lat[inside], lng[inside]


def copy_rows(lat: npt.NDArray[np.float64], lng: npt.NDArray[np.float64]) -> bytes:
    """Binary COPY rows ``(geom, h3_res7)`` for a chunk of points, cells from ``index_points``."""
    cells = index_points(lat, lng, np.full(lat.size, RESOLUTION), [RESOLUTION])[:, 0]
    rows = np.empty(lat.size, dtype=ROW)
    rows["fields"] = 2
    rows["geom_len"] = 25
    rows["byte_order"] = 1
    rows["wkb_type"] = EWKB_POINT_WITH_SRID
    rows["srid"] = 4326
    rows["x"] = lng
    rows["y"] = lat
    rows["cell_len"] = 8
    rows["cell"] = cells
    return rows.tobytes()


def mean_cell_area_m2(cells: npt.NDArray[np.int64], sample: int = 2000) -> float:
    """Mean ground area of (a sample of) the H3 cells, in m², on the equal-area projection."""
    import pyproj
    import shapely

    chosen = np.random.default_rng(0).choice(cells, size=min(sample, cells.size), replace=False)
    to_laea = pyproj.Transformer.from_crs("EPSG:4326", LAEA_PROJ4, always_xy=True)

    def project(lng_lat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.column_stack(to_laea.transform(lng_lat[:, 0], lng_lat[:, 1]))

    # Near an icosahedron face edge a cell's boundary has extra vertices: polygons one by one.
    hexagons = np.array([shapely.Polygon(cell_boundary(int(c))) for c in chosen], dtype=object)
    return float(shapely.area(shapely.transform(hexagons, project)).mean())


def explain(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> str:
    plan = conn.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(f"    {row[0]}" for row in plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="incident rows to load")
    parser.add_argument("--quick", action="store_true", help="same as --rows 1000000")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("VIGIL_BENCH_PG_DSN", "host=127.0.0.1 user=postgres"),
        help="libpq connection string or URI of the server (its dbname is ignored)",
    )
    parser.add_argument("--database", default="vigil_bench_sql", help="created and dropped")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each query")
    parser.add_argument(
        "--work-mem",
        default="",
        help="session work_mem for both queries, e.g. 64MB (default: the server's setting)",
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    rows = 1_000_000 if args.quick else args.rows
    database = sql.Identifier(args.database)

    admin_dsn = make_conninfo(args.dsn, dbname="postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(database))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(database))
    try:
        run(args, rows)
    finally:
        if not args.keep:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(database))
            print(f"\ndropped database {args.database}")


def run(args: argparse.Namespace, rows: int) -> None:
    conn = psycopg.connect(make_conninfo(args.dsn, dbname=args.database), autocommit=True)
    with conn:
        conn.execute("CREATE EXTENSION postgis")
        if args.work_mem:
            conn.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(args.work_mem)))
        conn.execute(
            "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, proj4text, srtext) "
            "VALUES (%s, 'vigil-bench', %s, %s, '')",
            (LAEA_SRID, LAEA_SRID, LAEA_PROJ4),
        )
        conn.execute(
            "CREATE TABLE incidents (geom geometry(Point, 4326) NOT NULL, h3_res7 bigint NOT NULL)"
        )
        version = conn.execute("SELECT version(), postgis_lib_version()").fetchone()
        assert version is not None
        settings = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")
        }
        print(f"{version[0].split(',')[0]}, PostGIS {version[1]}; {os.cpu_count()} CPUs")
        print(
            "server settings: "
            + ", ".join(f"{k} {v[0] if v else '?'}" for k, v in settings.items())
        )
        print(f"{rows:,} incident rows; queries best of {args.repeat}\n")

        # ------------------------------------------------------------------ load
        started = time.perf_counter()
        chunks = [copy_rows(lat, lng) for lat, lng in clustered_points(rows, CHUNK)]
        t_generate = time.perf_counter() - started
        started = time.perf_counter()
        copy_in = "COPY incidents (geom, h3_res7) FROM STDIN (FORMAT BINARY)"
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(copy_in) as copy:
            copy.write(COPY_SIGNATURE)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(COPY_TRAILER)
        t_copy = time.perf_counter() - started
        del chunks
        started = time.perf_counter()
        conn.execute("CREATE INDEX incidents_geom ON incidents USING gist (geom)")
        t_index = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE incidents")
        t_analyze = time.perf_counter() - started
        size = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('incidents')), "
            "pg_size_pretty(pg_relation_size('incidents_geom'))"
        ).fetchone()
        assert size is not None

        # ------------------------------------------------------------------ queries
        distinct = np.array(
            [row[0] for row in conn.execute("SELECT DISTINCT h3_res7 FROM incidents ORDER BY 1")],
            dtype=np.int64,
        )
        area = mean_cell_area_m2(distinct)
        edge = math.sqrt(2.0 * area / (3.0 * math.sqrt(3.0)))
        west, south, east, north = CAR_BOX
        params = {"edge": edge, "w": west, "s": south, "e": east, "n": north, "srid": LAEA_SRID}
        grid_size = f"SELECT count(*), avg(ST_Area(geom)) FROM {GRID}"  # noqa: S608 - constant
        grid = conn.execute(grid_size, params).fetchone()
        assert grid is not None

        def by_cell() -> list[tuple[Any, ...]]:
            return conn.execute(GROUP_BY_CELL).fetchall()

        def by_hexagon() -> list[tuple[Any, ...]]:
            return conn.execute(GROUP_BY_HEXAGON, params).fetchall()

        plan_cell = explain(conn, GROUP_BY_CELL, {})
        plan_hexagon = explain(conn, GROUP_BY_HEXAGON, params)
        t_cell, cell_rows = best_of(args.repeat, by_cell)
        t_hexagon, hexagon_rows = best_of(args.repeat, by_hexagon)

    print("load (reported apart from the queries)")
    print(f"  generate points + index_points (Python)  {t_generate:8.2f} s")
    print(f"  binary COPY of {rows:,} rows            {t_copy:8.2f} s")
    print(f"  GiST index on geom                        {t_index:8.2f} s")
    print(f"  VACUUM ANALYZE                            {t_analyze:8.2f} s")
    print(f"  table {size[0]}, GiST index {size[1]}")
    print("\ngrid")
    print(
        f"  H3 resolution {RESOLUTION}: mean area of the cells holding points "
        f"{area / 1e6:.3f} km² (sample of {min(2000, distinct.size):,})"
    )
    print(
        f"  ST_HexagonGrid: edge {edge:.1f} m in SRID {LAEA_SRID} (equal-area LAEA on the CAR), "
        f"area {float(grid[1]) / 1e6:.3f} km², {int(grid[0]):,} hexagons over the box"
    )
    print(f"\nqueries (best of {args.repeat}, wall clock incl. fetching the rows)")
    print(f"  (a) GROUP BY h3_res7                      {t_cell:8.3f} s  {len(cell_rows):,} groups")
    print(
        f"  (b) ST_HexagonGrid ⋈ ST_Intersects        {t_hexagon:8.3f} s  "
        f"{len(hexagon_rows):,} groups"
    )
    print(f"  ratio (b) / (a)                           {t_hexagon / t_cell:8.1f}×")
    counted_a = sum(int(row[1]) for row in cell_rows)
    counted_b = sum(int(row[2]) for row in hexagon_rows)
    print("\nchecks")
    print(f"  (a) counts {counted_a:,} of {rows:,} rows")
    print(
        f"  (b) counts {counted_b:,} rows ({counted_b - rows:+,}; a point on a shared edge would "
        "count in both hexagons)"
    )
    print(f"  plan (a):\n{plan_cell}")
    print(f"  plan (b):\n{plan_hexagon}")


if __name__ == "__main__":
    main()
