"""The mission's offline basemap: raster tiles from an MBTiles or a PMTiles file, served by
Vigil at ``/maps/tiles/{z}/{x}/{y}`` so a page never needs a tile server on the internet.

MBTiles (https://github.com/mapbox/mbtiles-spec) is an SQLite file whose ``tiles`` table is
addressed in TMS order (row 0 at the south); PMTiles v3 (https://github.com/protomaps/PMTiles)
is one file with a directory of tile ids, read here with the ``pmtiles`` package. Either way a
tile comes back as bytes with its media type; a tile the file does not hold is ``None`` (the
page shows the vector context there).
"""

from __future__ import annotations

import gzip
import mmap
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

__all__ = ["Basemap", "Tile", "open_basemap"]

_MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}


@dataclass(frozen=True)
class Tile:
    data: bytes
    media_type: str


class Basemap(Protocol):
    min_zoom: int
    max_zoom: int

    def tile(self, z: int, x: int, y: int) -> Tile | None: ...


def _in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= 30 and 0 <= x < 2**z and 0 <= y < 2**z


class MBTiles:
    """Tiles of an MBTiles file, read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        meta = dict(self._db().execute("SELECT name, value FROM metadata").fetchall())
        fmt = str(meta.get("format", "png")).lower()
        if fmt not in _MEDIA_TYPES:
            raise ValueError(f"{path}: MBTiles format {fmt!r} is not a raster format Vigil serves")
        self.media_type = _MEDIA_TYPES[fmt]
        zooms = self._db().execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
        self.min_zoom = int(meta.get("minzoom", zooms[0] or 0))
        self.max_zoom = int(meta.get("maxzoom", zooms[1] or 0))

    def _db(self) -> sqlite3.Connection:
        # One read-only connection per thread (sqlite3 connections stay in their thread).
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._local.connection = connection
        return connection

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        if not _in_range(z, x, y):
            return None
        row = (
            self._db()
            .execute(
                "SELECT tile_data FROM tiles "
                "WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, (2**z - 1) - y),
            )
            .fetchone()
        )
        return Tile(bytes(row[0]), self.media_type) if row else None


class PMTiles:
    """Raster tiles of a PMTiles v3 file, read through a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb")
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._reader = Reader(MmapSource(self._map))
        header = self._reader.header()
        kinds = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp"}
        if header["tile_type"] not in kinds:
            raise ValueError(f"{path}: PMTiles of {header['tile_type']!r} are not raster tiles")
        self.media_type = _MEDIA_TYPES[kinds[header["tile_type"]]]
        self._gzipped = header["tile_compression"] == Compression.GZIP
        self.min_zoom = int(header["min_zoom"])
        self.max_zoom = int(header["max_zoom"])

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        if not _in_range(z, x, y):
            return None
        data = self._reader.get(z, x, y)
        if data is None:
            return None
        return Tile(gzip.decompress(data) if self._gzipped else bytes(data), self.media_type)


def open_basemap(path: Path) -> Basemap:
    """The basemap file named by ``VIGIL_MAP_BASEMAP`` (by its suffix)."""
    if not path.is_file():
        raise ValueError(f"the basemap file {path} does not exist")
    if path.suffix.lower() == ".mbtiles":
        return MBTiles(path)
    if path.suffix.lower() == ".pmtiles":
        return PMTiles(path)
    raise ValueError(f"{path}: a basemap is an .mbtiles or a .pmtiles file")
