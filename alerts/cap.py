"""CAP 1.2 alert documents: a writer and a hardened parser, with nothing beyond the stdlib.

Vigil sends its alerts to other systems (and to people, as e-mail attachments) in the OASIS
Common Alerting Protocol, so a partner's alerting or GIS tool can read them without knowing
Vigil. The element names, their order and the value lists follow

    OASIS, "Common Alerting Protocol Version 1.2", OASIS Standard, 1 July 2010,
    http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html

with the XML namespace ``urn:oasis:names:tc:emergency:cap:1.2``.

``to_xml`` validates a :class:`CapMessage` and writes it; ``parse`` reads a document back and
checks it at least as strictly, so ``parse(to_xml(m)) == m`` for every message ``to_xml``
accepts. The parser is meant for documents from outside too: it refuses anything over
:data:`MAX_DOCUMENT_BYTES`, any DTD (``<!DOCTYPE``/``<!ENTITY``, looked for in the raw text before
an XML parser sees it, so entity-expansion and external-entity documents never get parsed), an
encoding other than UTF-8, the wrong root or namespace, elements out of schema order, unknown
elements and unknown values. CAP elements Vigil does not model (``source``, ``code``,
``audience``, ``onset``, ``contact``, ``resource``, ``circle``, ``altitude``, ``ceiling``) and
XML-Signature elements at the end of ``alert`` (the schema's one wildcard) are accepted and
dropped; a signature is not verified.

Date-times are CAP's ``YYYY-MM-DDThh:mm:ss±hh:mm`` with whole seconds: ``to_xml`` refuses a
datetime with microseconds rather than silently moving it, so round trips stay exact.

Exceptions::

    ValueError
    └── CapError      every refusal, by to_xml or parse; the message names the element or field
                      and says what is wrong, in words an operator can act on
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

__all__ = [
    "CAP_NAMESPACE",
    "CATEGORIES",
    "CERTAINTIES",
    "MAX_DOCUMENT_BYTES",
    "MSG_TYPES",
    "RESPONSE_TYPES",
    "SCOPES",
    "SEVERITIES",
    "STATUSES",
    "URGENCIES",
    "CapArea",
    "CapError",
    "CapInfo",
    "CapMessage",
    "cap_time",
    "parse",
    "reference",
    "to_xml",
]

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"

#: Largest document ``parse`` reads (1 MiB); ``to_xml`` refuses to write a larger one, so that
#: whatever Vigil writes, Vigil (and a receiver with the same limit) can read.
MAX_DOCUMENT_BYTES = 1024 * 1024

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)  # fmt: skip
RESPONSE_TYPES = (
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
)  # fmt: skip
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

#: CAP 1.2 §3.2.2: a document without <language> is in US English.
_DEFAULT_LANGUAGE = "en-US"


class CapError(ValueError):
    """A CAP message or document Vigil will not write or read; the message says why."""


@dataclass(frozen=True)
class CapArea:
    """One ``<area>``: a description and, optionally, polygons and geocodes.

    Each polygon is a closed ring of ``(lat, lon)`` pairs in WGS 84 degrees (first pair equal to
    the last, at least four pairs). A geocode is ``(valueName, value)``, e.g. ``("h3", cell)``.
    """

    description: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CapInfo:
    """One ``<info>`` block: what is happening, how bad, what to do, and where."""

    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str
    categories: tuple[str, ...] = ("Security",)
    response_types: tuple[str, ...] = ("Monitor",)
    instruction: str | None = None
    sender_name: str | None = None
    web: str | None = None
    effective: datetime | None = None
    expires: datetime | None = None
    language: str = "en"
    event_codes: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[CapArea, ...] = ()


@dataclass(frozen=True)
class CapMessage:
    """One ``<alert>``. ``references`` holds ``"sender,identifier,sent"`` strings (see
    :func:`reference`); ``restriction`` is required for Restricted scope, ``addresses`` for
    Private."""

    identifier: str
    sender: str
    sent: datetime
    msg_type: str
    infos: tuple[CapInfo, ...] = ()
    status: str = "Actual"
    scope: str = "Restricted"
    restriction: str | None = None
    addresses: str | None = None
    references: tuple[str, ...] = ()
    note: str | None = None
    incidents: str | None = None


# ---------------------------------------------------------------------------- date-times

_CAP_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})([+-])(\d{2}):(\d{2})", re.ASCII
)


def cap_time(moment: datetime) -> str:
    """``moment`` in CAP form: ``2026-12-04T17:51:39-00:00`` for UTC, ``±hh:mm`` otherwise.

    Fractional seconds are dropped (CAP has none); ``to_xml`` refuses them instead, so use this
    directly only where truncation is what you want (e.g. building a reference).

    Raises
    ------
    CapError
        ``moment`` is naive, or its UTC offset is not a whole number of minutes.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise CapError(f"CAP date-times need a time zone; {moment.isoformat()} is naive")
    total = int(offset.total_seconds())
    if offset != timedelta(seconds=total) or total % 60:
        raise CapError(f"CAP offsets are whole minutes; {moment.isoformat()} has {offset}")
    # CAP 1.2 §3.3.2: UTC is written "-00:00", never "Z" (and "+00:00" is avoided too).
    sign = "-" if total <= 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    # Formatted by hand: strftime's %Y does not zero-pad years before 1000 on every platform.
    m = moment
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f"{sign}{hours:02d}:{minutes:02d}"
    )


def _parse_time(text: str, where: str) -> datetime:
    match = _CAP_TIME.fullmatch(text)
    if match is None:
        raise CapError(f"{where} is not a CAP date-time (YYYY-MM-DDThh:mm:ss±hh:mm): {text!r}")
    year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
    if int(off_m) >= 60:
        raise CapError(f"{where} has an impossible UTC offset: {text!r}")
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    if offset >= timedelta(hours=24):
        raise CapError(f"{where} has an impossible UTC offset: {text!r}")
    zone = UTC if not offset else timezone(-offset if sign == "-" else offset)
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError as error:
        raise CapError(f"{where} is not a real date-time: {text!r} ({error})") from None


def reference(message: CapMessage) -> str:
    """The CAP reference to ``message``: ``"sender,identifier,sent"``, as an Update, Cancel or
    Ack that refers to it puts in its ``references``."""
    return f"{message.sender},{message.identifier},{cap_time(message.sent)}"


# ---------------------------------------------------------------------------- validation

# XML 1.0 §2.2 Char; anything else cannot be carried in a document at all.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_IN_ID = re.compile(r"[\s,<&]")


def _check_text(value: object, field: str, *, required: bool = False) -> None:
    if not isinstance(value, str):
        raise CapError(f"{field} must be text, not {type(value).__name__}")
    if required and not value:
        raise CapError(f"{field} must not be empty")
    bad = _NOT_XML_CHAR.search(value)
    if bad is not None:
        raise CapError(f"{field} contains a character XML cannot carry: U+{ord(bad[0]):04X}")


def _check_optional_text(value: object, field: str) -> None:
    if value is not None:
        _check_text(value, field)


def _check_id(value: object, field: str) -> None:
    _check_text(value, field, required=True)
    assert isinstance(value, str)
    bad = _NOT_IN_ID.search(value)
    if bad is not None:
        raise CapError(
            f"{field} must not contain spaces, commas, '<' or '&'; {value!r} has {bad[0]!r}"
        )


def _check_enum(value: object, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise CapError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")


def _check_time(value: object, field: str) -> None:
    if not isinstance(value, datetime):
        raise CapError(f"{field} must be a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise CapError(f"{field} must be timezone-aware; {value.isoformat()} is naive")
    if value.microsecond:
        raise CapError(
            f"{field} has fractional seconds ({value.isoformat()}), which CAP cannot carry; "
            "use .replace(microsecond=0)"
        )
    cap_time(value)  # the offset check


def _check_pairs(value: object, field: str) -> None:
    if not isinstance(value, tuple):
        raise CapError(f"{field} must be a tuple of (name, value) pairs")
    for index, pair in enumerate(value):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise CapError(f"{field}[{index}] must be a (name, value) pair")
        _check_text(pair[0], f"{field}[{index}] name", required=True)
        _check_text(pair[1], f"{field}[{index}] value")


def _check_polygon(ring: object, field: str) -> None:
    if not isinstance(ring, tuple) or len(ring) < 4:
        raise CapError(f"{field} needs at least 4 (lat, lon) points, the first repeated last")
    for index, point in enumerate(ring):
        if not (isinstance(point, tuple) and len(point) == 2):
            raise CapError(f"{field} point {index} must be a (lat, lon) pair")
        lat, lon = point
        for name, number, limit in (("latitude", lat, 90), ("longitude", lon, 180)):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise CapError(f"{field} point {index}: {name} must be a number")
            if not (math.isfinite(number) and -limit <= number <= limit):
                raise CapError(
                    f"{field} point {index}: {name} {number} is outside [-{limit}, {limit}]"
                )
    if ring[0] != ring[-1]:
        raise CapError(f"{field} is not closed: the first point must equal the last")


def _check_area(area: object, field: str) -> None:
    if not isinstance(area, CapArea):
        raise CapError(f"{field} must be a CapArea")
    _check_text(area.description, f"{field}.description", required=True)
    for index, ring in enumerate(area.polygons):
        _check_polygon(ring, f"{field}.polygons[{index}]")
    _check_pairs(area.geocodes, f"{field}.geocodes")


def _check_info(info: object, field: str) -> None:
    if not isinstance(info, CapInfo):
        raise CapError(f"{field} must be a CapInfo")
    _check_text(info.language, f"{field}.language", required=True)
    if not info.categories:
        raise CapError(f"{field}.categories needs at least one category")
    for category in info.categories:
        _check_enum(category, CATEGORIES, f"{field}.categories")
    _check_text(info.event, f"{field}.event", required=True)
    for response in info.response_types:
        _check_enum(response, RESPONSE_TYPES, f"{field}.response_types")
    _check_enum(info.urgency, URGENCIES, f"{field}.urgency")
    _check_enum(info.severity, SEVERITIES, f"{field}.severity")
    _check_enum(info.certainty, CERTAINTIES, f"{field}.certainty")
    _check_pairs(info.event_codes, f"{field}.event_codes")
    for name in ("effective", "expires"):
        moment = getattr(info, name)
        if moment is not None:
            _check_time(moment, f"{field}.{name}")
    _check_optional_text(info.sender_name, f"{field}.sender_name")
    _check_text(info.headline, f"{field}.headline")
    _check_text(info.description, f"{field}.description")
    _check_optional_text(info.instruction, f"{field}.instruction")
    _check_optional_text(info.web, f"{field}.web")
    _check_pairs(info.parameters, f"{field}.parameters")
    for index, area in enumerate(info.areas):
        _check_area(area, f"{field}.areas[{index}]")


def _check_reference(value: object, index: int) -> None:
    field = f"references[{index}]"
    _check_text(value, field, required=True)
    assert isinstance(value, str)
    parts = value.split(",")
    if len(parts) != 3:
        raise CapError(f"{field} must be 'sender,identifier,sent'; got {value!r}")
    _check_id(parts[0], f"{field} sender")
    _check_id(parts[1], f"{field} identifier")
    _parse_time(parts[2], f"{field} sent")


def _validate(message: CapMessage) -> None:
    if not isinstance(message, CapMessage):
        raise CapError(f"expected a CapMessage, not {type(message).__name__}")
    _check_id(message.identifier, "identifier")
    _check_id(message.sender, "sender")
    _check_time(message.sent, "sent")
    _check_enum(message.status, STATUSES, "status")
    _check_enum(message.msg_type, MSG_TYPES, "msg_type")
    _check_enum(message.scope, SCOPES, "scope")
    _check_optional_text(message.restriction, "restriction")
    _check_optional_text(message.addresses, "addresses")
    if message.scope == "Restricted" and not message.restriction:
        raise CapError("scope Restricted needs a restriction saying who may see the alert")
    if message.scope == "Private" and not message.addresses:
        raise CapError("scope Private needs addresses naming the recipients")
    _check_optional_text(message.note, "note")
    for index, ref in enumerate(message.references):
        _check_reference(ref, index)
    if message.msg_type in ("Update", "Cancel", "Ack") and not message.references:
        raise CapError(f"msgType {message.msg_type} needs references to the message it answers")
    _check_optional_text(message.incidents, "incidents")
    if message.msg_type in ("Alert", "Update") and not message.infos:
        raise CapError(f"msgType {message.msg_type} needs at least one info block")
    for index, info in enumerate(message.infos):
        _check_info(info, f"infos[{index}]")


# ---------------------------------------------------------------------------- writing


def _escape(text: str) -> str:
    # "\r" as a character reference: a literal one would come back as "\n" (XML §2.11).
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _number(value: float) -> str:
    # Shortest repr that round-trips, written positionally (no "1e-05" in a polygon).
    return "0.0" if value == 0 else format(Decimal(repr(float(value))), "f")


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
        self.depth = 0

    def leaf(self, name: str, text: str | None) -> None:
        if text is not None:
            self.lines.append(f"{'  ' * self.depth}<{name}>{_escape(text)}</{name}>")

    def open(self, name: str, attributes: str = "") -> None:
        self.lines.append(f"{'  ' * self.depth}<{name}{attributes}>")
        self.depth += 1

    def close(self, name: str) -> None:
        self.depth -= 1
        self.lines.append(f"{'  ' * self.depth}</{name}>")

    def pairs(self, name: str, pairs: tuple[tuple[str, str], ...]) -> None:
        for key, value in pairs:
            self.open(name)
            self.leaf("valueName", key)
            self.leaf("value", value)
            self.close(name)


def _write_area(out: _Writer, area: CapArea) -> None:
    out.open("area")
    out.leaf("areaDesc", area.description)
    for ring in area.polygons:
        out.leaf("polygon", " ".join(f"{_number(lat)},{_number(lon)}" for lat, lon in ring))
    out.pairs("geocode", area.geocodes)
    out.close("area")


def _write_info(out: _Writer, info: CapInfo) -> None:
    out.open("info")
    out.leaf("language", info.language)
    for category in info.categories:
        out.leaf("category", category)
    out.leaf("event", info.event)
    for response in info.response_types:
        out.leaf("responseType", response)
    out.leaf("urgency", info.urgency)
    out.leaf("severity", info.severity)
    out.leaf("certainty", info.certainty)
    out.pairs("eventCode", info.event_codes)
    out.leaf("effective", None if info.effective is None else cap_time(info.effective))
    out.leaf("expires", None if info.expires is None else cap_time(info.expires))
    out.leaf("senderName", info.sender_name)
    out.leaf("headline", info.headline)
    out.leaf("description", info.description)
    out.leaf("instruction", info.instruction)
    out.leaf("web", info.web)
    out.pairs("parameter", info.parameters)
    for area in info.areas:
        _write_area(out, area)
    out.close("info")


def to_xml(message: CapMessage) -> str:
    """Validate ``message`` and write it as a CAP 1.2 document (text; encode it as UTF-8).

    Elements appear in the order of the CAP 1.2 schema, indented two spaces per level.

    Raises
    ------
    CapError
        The message breaks a CAP rule (the error names the field), or the document would be
        larger than :data:`MAX_DOCUMENT_BYTES`.
    """
    _validate(message)
    out = _Writer()
    out.open("alert", f' xmlns="{CAP_NAMESPACE}"')
    out.leaf("identifier", message.identifier)
    out.leaf("sender", message.sender)
    out.leaf("sent", cap_time(message.sent))
    out.leaf("status", message.status)
    out.leaf("msgType", message.msg_type)
    out.leaf("scope", message.scope)
    out.leaf("restriction", message.restriction)
    out.leaf("addresses", message.addresses)
    out.leaf("note", message.note)
    out.leaf("references", " ".join(message.references) if message.references else None)
    out.leaf("incidents", message.incidents)
    for info in message.infos:
        _write_info(out, info)
    out.close("alert")
    document = "\n".join(out.lines) + "\n"
    size = len(document.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise CapError(
            f"the CAP document would be {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit"
        )
    return document


# ---------------------------------------------------------------------------- reading

# Each container's children in schema order: (name, min, max, kept). Unkept names are valid
# CAP that Vigil does not model; they are checked for place and count, then dropped.
_Slot = tuple[str, int, int, bool]
_MANY = 1 << 30
_ALERT: tuple[_Slot, ...] = (
    ("identifier", 1, 1, True),
    ("sender", 1, 1, True),
    ("sent", 1, 1, True),
    ("status", 1, 1, True),
    ("msgType", 1, 1, True),
    ("source", 0, 1, False),
    ("scope", 1, 1, True),
    ("restriction", 0, 1, True),
    ("addresses", 0, 1, True),
    ("code", 0, _MANY, False),
    ("note", 0, 1, True),
    ("references", 0, 1, True),
    ("incidents", 0, 1, True),
    ("info", 0, _MANY, True),
)
_INFO: tuple[_Slot, ...] = (
    ("language", 0, 1, True),
    ("category", 1, _MANY, True),
    ("event", 1, 1, True),
    ("responseType", 0, _MANY, True),
    ("urgency", 1, 1, True),
    ("severity", 1, 1, True),
    ("certainty", 1, 1, True),
    ("audience", 0, 1, False),
    ("eventCode", 0, _MANY, True),
    ("effective", 0, 1, True),
    ("onset", 0, 1, False),
    ("expires", 0, 1, True),
    ("senderName", 0, 1, True),
    ("headline", 0, 1, True),
    ("description", 0, 1, True),
    ("instruction", 0, 1, True),
    ("web", 0, 1, True),
    ("contact", 0, 1, False),
    ("parameter", 0, _MANY, True),
    ("resource", 0, _MANY, False),
    ("area", 0, _MANY, True),
)
_AREA: tuple[_Slot, ...] = (
    ("areaDesc", 1, 1, True),
    ("polygon", 0, _MANY, True),
    ("circle", 0, _MANY, False),
    ("geocode", 0, _MANY, True),
    ("altitude", 0, 1, False),
    ("ceiling", 0, 1, False),
)
_PAIR: tuple[_Slot, ...] = (("valueName", 1, 1, True), ("value", 1, 1, True))
_RESOURCE: tuple[_Slot, ...] = (
    ("resourceDesc", 1, 1, False),
    ("mimeType", 1, 1, False),
    ("size", 0, 1, False),
    ("uri", 0, 1, False),
    ("derefUri", 0, 1, False),
    ("digest", 0, 1, False),
)
#: Containers whose children are checked even though Vigil drops them.
_NESTED: dict[str, tuple[_Slot, ...]] = {"resource": _RESOURCE}

_NS = "{" + CAP_NAMESPACE + "}"
_XMLDSIG = "{http://www.w3.org/2000/09/xmldsig#}"
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)", re.ASCII)
_ENCODING = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _children(
    parent: ET.Element, slots: tuple[_Slot, ...], where: str
) -> dict[str, list[ET.Element]]:
    """Check ``parent``'s children against ``slots`` (names, order, counts) and group them."""
    if parent.text is not None and parent.text.strip():
        raise CapError(f"<{where}> holds text outside its child elements")
    found: dict[str, list[ET.Element]] = {name: [] for name, *_ in slots}
    position = 0
    for child in parent:
        if child.tail is not None and child.tail.strip():
            raise CapError(f"<{where}> holds text outside its child elements")
        if not child.tag.startswith(_NS):
            # The schema's only wildcard: XML-Signature elements at the end of <alert>.
            if where == "alert" and child.tag.startswith(_XMLDSIG):
                position = len(slots)
                continue
            raise CapError(f"<{where}> contains an element from another namespace: {child.tag}")
        name = child.tag[len(_NS) :]
        if position == len(slots) and where == "alert":
            raise CapError("<alert> has CAP elements after its signature")
        names = [slot[0] for slot in slots]
        if name not in names:
            raise CapError(f"<{where}> may not contain <{name}>")
        index = names.index(name)
        if index < position:
            raise CapError(
                f"<{name}> is out of order in <{where}>: it must come before <{names[position]}>"
            )
        position = index
        found[name].append(child)
        maximum = slots[index][2]
        if len(found[name]) > maximum:
            raise CapError(f"<{where}> has more than one <{name}>")
        if name in _NESTED:
            _children(child, _NESTED[name], name)
    for name, minimum, _maximum, _kept in slots:
        if len(found[name]) < minimum:
            raise CapError(f"<{where}> is missing its required <{name}>")
    return found


def _text(element: ET.Element, where: str) -> str:
    if len(element):
        raise CapError(f"<{where}> must hold text, not elements")
    return element.text or ""


def _one(found: dict[str, list[ET.Element]], name: str) -> str | None:
    elements = found[name]
    return _text(elements[0], name) if elements else None


def _required(found: dict[str, list[ET.Element]], name: str) -> str:
    value = _one(found, name)
    assert value is not None  # _children checked the minimum count
    return value


def _many(found: dict[str, list[ET.Element]], name: str) -> tuple[str, ...]:
    return tuple(_text(element, name) for element in found[name])


def _pairs(found: dict[str, list[ET.Element]], name: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for element in found[name]:
        parts = _children(element, _PAIR, name)
        pairs.append((_required(parts, "valueName"), _required(parts, "value")))
    return tuple(pairs)


def _enum(found: dict[str, list[ET.Element]], name: str, allowed: tuple[str, ...]) -> str:
    value = _required(found, name)
    _check_enum(value, allowed, f"<{name}>")
    return value


def _time(found: dict[str, list[ET.Element]], name: str) -> datetime | None:
    text = _one(found, name)
    return None if text is None else _parse_time(text, f"<{name}>")


def _parse_polygon(text: str) -> tuple[tuple[float, float], ...]:
    points = []
    for pair in text.split():
        lat, comma, lon = pair.partition(",")
        if not (comma and _DECIMAL.fullmatch(lat) and _DECIMAL.fullmatch(lon)):
            raise CapError(f"<polygon> has a point that is not 'lat,lon': {pair[:40]!r}")
        points.append((float(lat), float(lon)))
    return tuple(points)


def _read_area(element: ET.Element) -> CapArea:
    found = _children(element, _AREA, "area")
    return CapArea(
        description=_required(found, "areaDesc"),
        polygons=tuple(_parse_polygon(text) for text in _many(found, "polygon")),
        geocodes=_pairs(found, "geocode"),
    )


def _read_info(element: ET.Element) -> CapInfo:
    found = _children(element, _INFO, "info")
    return CapInfo(
        language=_one(found, "language") or _DEFAULT_LANGUAGE,
        categories=_many(found, "category"),
        event=_required(found, "event"),
        response_types=_many(found, "responseType"),
        urgency=_enum(found, "urgency", URGENCIES),
        severity=_enum(found, "severity", SEVERITIES),
        certainty=_enum(found, "certainty", CERTAINTIES),
        event_codes=_pairs(found, "eventCode"),
        effective=_time(found, "effective"),
        expires=_time(found, "expires"),
        sender_name=_one(found, "senderName"),
        # Optional in CAP, always written by Vigil; a missing one reads as empty.
        headline=_one(found, "headline") or "",
        description=_one(found, "description") or "",
        instruction=_one(found, "instruction"),
        web=_one(found, "web"),
        parameters=_pairs(found, "parameter"),
        areas=tuple(_read_area(area) for area in found["area"]),
    )


def _read_alert(root: ET.Element) -> CapMessage:
    found = _children(root, _ALERT, "alert")
    references = _one(found, "references")
    sent = _time(found, "sent")
    assert sent is not None
    return CapMessage(
        identifier=_required(found, "identifier"),
        sender=_required(found, "sender"),
        sent=sent,
        status=_enum(found, "status", STATUSES),
        msg_type=_enum(found, "msgType", MSG_TYPES),
        scope=_enum(found, "scope", SCOPES),
        restriction=_one(found, "restriction"),
        addresses=_one(found, "addresses"),
        note=_one(found, "note"),
        references=tuple(references.split()) if references is not None else (),
        incidents=_one(found, "incidents"),
        infos=tuple(_read_info(info) for info in found["info"]),
    )


def _raw_bytes(document: str | bytes) -> bytes:
    if isinstance(document, str):
        if len(document) > MAX_DOCUMENT_BYTES:
            raise CapError(f"the CAP document is over the {MAX_DOCUMENT_BYTES}-byte limit")
        try:
            raw = document.encode("utf-8")
        except UnicodeEncodeError:
            raise CapError("the CAP document contains characters UTF-8 cannot encode") from None
    elif isinstance(document, bytes | bytearray | memoryview):
        raw = bytes(document)
    else:
        raise CapError(f"a CAP document is text or bytes, not {type(document).__name__}")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise CapError(
            f"the CAP document is {len(raw)} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit"
        )
    return raw.removeprefix(b"\xef\xbb\xbf")


def parse(document: str | bytes) -> CapMessage:
    """Read a CAP 1.2 document, refusing anything unsafe or invalid (see the module docstring).

    Raises
    ------
    CapError
        For every problem with the document, including XML that does not parse; nothing else
        escapes for bad input.
    """
    raw = _raw_bytes(document)
    # A DTD is the only way to declare entities (billion laughs, external entities reading
    # local files); CAP needs none, so refuse before any XML parser sees the bytes. The text is
    # checked as UTF-8, the only encoding accepted, so a UTF-16 document cannot hide one.
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CapError(f"the CAP document is not valid UTF-8 (byte {error.start})") from None
    if _FORBIDDEN.search(raw):
        raise CapError("the CAP document has a DOCTYPE or ENTITY declaration, which is refused")
    declared = _ENCODING.match(raw)
    if declared is not None and declared[1].lower() not in (b"utf-8", b"utf8"):
        raise CapError(f"the CAP document declares encoding {declared[1].decode()!r}; use UTF-8")
    try:
        root = ET.fromstring(raw, parser=ET.XMLParser(encoding="utf-8"))  # noqa: S314
    except ET.ParseError as error:
        raise CapError(f"the CAP document is not well-formed XML: {error}") from None
    if root.tag != _NS + "alert":
        raise CapError(
            f"the root element must be <alert> in namespace {CAP_NAMESPACE}; got {root.tag}"
        )
    message = _read_alert(root)
    _validate(message)
    return message
