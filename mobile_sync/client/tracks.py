"""GPS fixes for ``track_append`` ops: checked on the device, read from GPX or GeoJSON files.

A fix is ``(t, lon, lat[, accuracy_m])`` with ``t`` the GNSS fix time (timezone-aware). The
server stores fixes idempotently per time and refuses an append whose times are not strictly
increasing (it would quarantine it), so the device checks that here, where the officer can
still fix the file, instead of queuing an op that can never be applied.
"""

from __future__ import annotations

import itertools
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from mobile_sync.client.errors import InvalidTrackError

__all__ = [
    "FIXES_PER_OP",
    "PATROL_KINDS",
    "Fix",
    "fix_json",
    "normalise_fixes",
    "read_track_file",
]

#: The server's patrol types (``server.patrols.enums.PatrolType``; the client may not import
#: the server, a test keeps the two equal).
PATROL_KINDS = (
    "foot",
    "mobile",
    "night",
    "long_range",
    "escort_firewood",
    "escort_market",
    "escort_water",
    "joint_police",
    "air",
)

#: Fixes per op: ~80 bytes each in JSON, so an op stays far below the 256 KiB op limit and
#: the server's 5,000 fixes per append; a longer track becomes several ops, written together.
FIXES_PER_OP = 1000


class Fix(NamedTuple):
    t: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidTrackError(f"{where}: {value!r} is not an ISO 8601 time") from None
    else:
        raise InvalidTrackError(f"{where}: the fix time must be an ISO 8601 time, not {value!r}")
    if moment.tzinfo is None:
        raise InvalidTrackError(f"{where}: the fix time {value!r} has no time zone")
    return moment.astimezone(UTC)


def _number(value: Any, where: str, name: str, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise InvalidTrackError(f"{where}: {name} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidTrackError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidTrackError(f"{where}: {name} {value!r} is outside {low:g}..{high:g}")
    return number


def _fix(item: Any, where: str) -> Fix:
    if isinstance(item, Fix):
        values: Sequence[Any] = tuple(item)
    elif isinstance(item, Mapping):
        values = (item.get("t"), item.get("lon"), item.get("lat"), item.get("accuracy_m"))
    elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (3, 4):
        values = tuple(item)
    else:
        raise InvalidTrackError(f"{where}: a fix is (t, lon, lat[, accuracy_m]), not {item!r}")
    t, lon, lat, *rest = values
    accuracy = rest[0] if rest else None
    return Fix(
        _time(t, where),
        _number(lon, where, "longitude", -180, 180),
        _number(lat, where, "latitude", -90, 90),
        None if accuracy is None else _number(accuracy, where, "accuracy", 0, 100_000),
    )


def normalise_fixes(fixes: Iterable[Any], *, source: str = "fix") -> list[Fix]:
    """Checked fixes in strictly increasing time. Input in any order is sorted (GPX segments,
    GeoJSON features); two fixes at one time are refused, since the server keeps one fix per
    time and could not tell which is right."""
    checked = [_fix(item, f"{source} {index}") for index, item in enumerate(fixes, start=1)]
    if not checked:
        raise InvalidTrackError(f"{source}: no fixes")
    checked.sort(key=lambda fix: fix.t)
    for a, b in itertools.pairwise(checked):
        if a.t == b.t:
            raise InvalidTrackError(
                f"{source}: two fixes at {a.t.isoformat()}; each fix needs its own time"
            )
    return checked


def fix_json(fix: Fix) -> dict[str, Any]:
    """A fix as the server's ``TrackFix`` reads it."""
    body: dict[str, Any] = {
        "t": fix.t.isoformat().replace("+00:00", "Z"),
        "lon": fix.lon,
        "lat": fix.lat,
    }
    if fix.accuracy_m is not None:
        body["accuracy_m"] = fix.accuracy_m
    return body


# --------------------------------------------------------------------------- files


def read_track_file(path: Path | str) -> list[Fix]:
    """Fixes from a GPX file (track and route points, ``<time>`` required) or a GeoJSON file
    (a Feature or FeatureCollection of LineStrings with ``properties.times`` or ``coordTimes``
    and optional ``accuracy_m``, or of Points with ``properties.time``). Raises
    :class:`InvalidTrackError` saying what is wrong, and where, for anything else."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise InvalidTrackError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    suffix = source.suffix.lower()
    head = raw.lstrip()[:1]
    if suffix == ".gpx" or (suffix not in (".geojson", ".json") and head == b"<"):
        return normalise_fixes(_gpx_fixes(raw, source.name), source=source.name)
    return normalise_fixes(_geojson_fixes(raw, source.name), source=source.name)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # GPX 1.0 and 1.1 differ only in the namespace


def _gpx_fixes(raw: bytes, name: str) -> list[Fix]:
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        # GPX needs no DTD; refusing one shuts out entity expansion and external entities,
        # the attacks on stdlib XML parsing (the file may come from anyone's GPS app).
        raise InvalidTrackError(f"{name}: a GPX file with a DOCTYPE/ENTITY is not accepted")
    try:
        root = ET.fromstring(raw)  # noqa: S314 (no DTD: checked above)
    except ET.ParseError as exc:
        raise InvalidTrackError(f"{name}: not well-formed GPX/XML ({exc})") from None
    if _local(root.tag) != "gpx":
        raise InvalidTrackError(f"{name}: the root element is <{_local(root.tag)}>, not <gpx>")
    points = [e for e in root.iter() if _local(e.tag) in ("trkpt", "rtept")]
    if not points:
        raise InvalidTrackError(f"{name}: no track points (<trkpt>) or route points (<rtept>)")
    fixes = []
    for index, point in enumerate(points, start=1):
        where = f"{name}: point {index}"
        times = [c.text for c in point if _local(c.tag) == "time"]
        if not times or not (times[0] or "").strip():
            raise InvalidTrackError(f"{where} has no <time> (a patrol track needs fix times)")
        stamp = (times[0] or "").strip()
        fixes.append(
            Fix(
                _time(stamp, where),
                _number(point.get("lon"), where, "longitude", -180, 180),
                _number(point.get("lat"), where, "latitude", -90, 90),
            )
        )
    return fixes


def _geojson_fixes(raw: bytes, name: str) -> list[Fix]:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTrackError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InvalidTrackError(f"{name}: a GeoJSON Feature or FeatureCollection is expected")
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise InvalidTrackError(f"{name}: the FeatureCollection has no features")
    elif kind == "Feature":
        features = [document]
    elif kind in ("LineString", "Point", "MultiPoint"):
        raise InvalidTrackError(
            f"{name}: a bare {kind} has no fix times; wrap it in a Feature with "
            "properties.times (one per position) or properties.time"
        )
    else:
        raise InvalidTrackError(f"{name}: GeoJSON type {kind!r} is not a Feature(Collection)")
    fixes: list[Fix] = []
    for index, feature in enumerate(features, start=1):
        fixes.extend(_feature_fixes(feature, f"{name}: feature {index}"))
    return fixes


def _feature_fixes(feature: Any, where: str) -> list[Fix]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidTrackError(f"{where} is not a GeoJSON Feature")
    geometry = feature.get("geometry")
    properties = feature.get("properties")
    if not isinstance(geometry, dict) or not isinstance(properties, dict):
        raise InvalidTrackError(f"{where} needs a geometry and properties")
    coordinates = geometry.get("coordinates")
    positions: list[Any]
    times: Any
    accuracy: Any
    if geometry.get("type") == "Point":
        positions = [coordinates]
        times = [properties.get("time", properties.get("t"))]
        accuracy = [properties.get("accuracy_m")]
    elif geometry.get("type") == "LineString":
        if not isinstance(coordinates, list) or not coordinates:
            raise InvalidTrackError(f"{where}: the LineString has no coordinates")
        positions = coordinates
        times = properties.get("times", properties.get("coordTimes"))
        if not isinstance(times, list) or len(times) != len(positions):
            raise InvalidTrackError(
                f"{where}: properties.times must give one fix time per position "
                f"({len(positions)} positions)"
            )
        accuracy = properties.get("accuracy_m") or [None] * len(positions)
        if not isinstance(accuracy, list) or len(accuracy) != len(positions):
            raise InvalidTrackError(f"{where}: properties.accuracy_m needs one entry per position")
    else:
        raise InvalidTrackError(
            f"{where}: geometry {geometry.get('type')!r} is not a LineString or Point"
        )
    fixes = []
    for i, (position, t, a) in enumerate(zip(positions, times, accuracy, strict=True), start=1):
        at = f"{where}, position {i}"
        if t is None:
            raise InvalidTrackError(f"{at} has no fix time (properties.time)")
        if not isinstance(position, list) or len(position) < 2:
            raise InvalidTrackError(f"{at}: a position is [lon, lat]")
        fixes.append(_fix((t, position[0], position[1], a), at))
    return fixes
