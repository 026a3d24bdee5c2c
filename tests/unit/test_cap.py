"""CAP 1.2 writer and parser: exact round trips, schema order, every refusal, hostile documents."""

from __future__ import annotations

import contextlib
import dataclasses
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import cap
from alerts.cap import CapArea, CapError, CapInfo, CapMessage, cap_time, parse, reference, to_xml

NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
SENT = datetime(2026, 12, 4, 17, 51, 39, tzinfo=UTC)
BANGUI = timezone(timedelta(hours=1))
RING = ((5.75, 20.65), (5.80, 20.70), (5.70, 20.75), (5.75, 20.65))


def _info(**changes: Any) -> CapInfo:
    base = CapInfo(
        event="Armed clash",
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
        headline="Armed clash reported near Bambari",
        description="Exchange of fire on the RN2, 4 km north of the bridge.",
    )
    return dataclasses.replace(base, **changes)


def _alert(**changes: Any) -> CapMessage:
    base = CapMessage(
        identifier="vigil-alert-42",
        sender="vigil@minusca.example",
        sent=SENT,
        msg_type="Alert",
        restriction="MINUSCA staff with need to know",
        infos=(_info(),),
    )
    return dataclasses.replace(base, **changes)


ORIGINAL = _alert()
FULL_INFO = _info(
    categories=("Security", "Safety"),
    response_types=("Avoid", "Monitor"),
    instruction="Patrols avoid the RN2 north of the bridge until further notice.",
    sender_name="JOC Bambari",
    web="https://vigil.example/alerts/42",
    effective=datetime(2026, 12, 4, 18, 0, 0, tzinfo=BANGUI),
    expires=datetime(2026, 12, 5, 18, 0, 0, tzinfo=BANGUI),
    language="fr",
    event_codes=(("vigil", "armed-clash"),),
    parameters=(("report_count", "3"), ("max_severity", "4")),
    areas=(
        CapArea(
            "Bambari north",
            polygons=(RING, ((0.0, -179.5), (1e-05, 179.5), (-89.9, 0.0), (0.0, -179.5))),
            geocodes=(("h3", "881e0cc8a1fffff"), ("h3", "881e0cc8a3fffff")),
        ),
        CapArea("Ouaka prefecture"),
    ),
)

ROUND_TRIPS = {
    "minimal alert": ORIGINAL,
    "full info with polygons geocodes parameters": _alert(infos=(FULL_INFO,)),
    "two infos in two languages": _alert(infos=(_info(), FULL_INFO)),
    "update with reference": _alert(
        identifier="vigil-alert-43", msg_type="Update", references=(reference(ORIGINAL),)
    ),
    "cancel without info": _alert(
        identifier="vigil-alert-44",
        msg_type="Cancel",
        infos=(),
        references=(reference(ORIGINAL), "other@example.org,x-1,2026-12-01T08:00:00+01:00"),
        note="Cancelled: the clash report was a duplicate.",
    ),
    "ack from a unit": _alert(
        identifier="ack-1",
        sender="unit-banbatt-2",
        msg_type="Ack",
        infos=(),
        references=(reference(ORIGINAL),),
        sent=datetime(2026, 12, 4, 18, 2, 0, tzinfo=BANGUI),
    ),
    "private exercise": _alert(
        status="Exercise", scope="Private", restriction=None, addresses='joc "unit 2"'
    ),
    "public with incidents and awkward text": _alert(
        scope="Public",
        restriction=None,
        incidents="inc-7 inc-9",
        infos=(
            _info(
                headline="  leading & trailing spaces <kept>  ",
                description="line one\r\nline two\rline three\n\ttabbed ]]> ünïcödé 🛰",
                instruction="",
            ),
        ),
    ),
    "error message": _alert(msg_type="Error", infos=(), note="unknown reference"),
    "negative offset": _alert(
        sent=datetime(2026, 3, 1, 0, 0, 0, tzinfo=timezone(-timedelta(hours=4, minutes=30)))
    ),
    "zoneinfo": _alert(sent=datetime(2026, 7, 1, 9, 30, 0, tzinfo=ZoneInfo("Africa/Bangui"))),
}


@pytest.mark.parametrize("message", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(message: CapMessage) -> None:
    document = to_xml(message)
    assert parse(document) == message
    assert parse(document.encode("utf-8")) == message


def test_known_answer_for_a_small_message() -> None:
    message = _alert(
        infos=(_info(areas=(CapArea("Bambari", polygons=(RING,), geocodes=(("h3", "88"),)),)),)
    )
    assert to_xml(message) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">\n'
        "  <identifier>vigil-alert-42</identifier>\n"
        "  <sender>vigil@minusca.example</sender>\n"
        "  <sent>2026-12-04T17:51:39-00:00</sent>\n"
        "  <status>Actual</status>\n"
        "  <msgType>Alert</msgType>\n"
        "  <scope>Restricted</scope>\n"
        "  <restriction>MINUSCA staff with need to know</restriction>\n"
        "  <info>\n"
        "    <language>en</language>\n"
        "    <category>Security</category>\n"
        "    <event>Armed clash</event>\n"
        "    <responseType>Monitor</responseType>\n"
        "    <urgency>Immediate</urgency>\n"
        "    <severity>Severe</severity>\n"
        "    <certainty>Observed</certainty>\n"
        "    <headline>Armed clash reported near Bambari</headline>\n"
        "    <description>Exchange of fire on the RN2, 4 km north of the bridge.</description>\n"
        "    <area>\n"
        "      <areaDesc>Bambari</areaDesc>\n"
        "      <polygon>5.75,20.65 5.8,20.7 5.7,20.75 5.75,20.65</polygon>\n"
        "      <geocode>\n"
        "        <valueName>h3</valueName>\n"
        "        <value>88</value>\n"
        "      </geocode>\n"
        "    </area>\n"
        "  </info>\n"
        "</alert>\n"
    )


# The CAP 1.2 schema's sequences (OASIS CAP v1.2 §3.4), written out independently of alerts.cap.
SCHEMA = {
    "alert": "identifier sender sent status msgType source scope restriction addresses code note "
    "references incidents info",
    "info": "language category event responseType urgency severity certainty audience eventCode "
    "effective onset expires senderName headline description instruction web contact parameter "
    "resource area",
    "area": "areaDesc polygon circle geocode altitude ceiling",
    "eventCode": "valueName value",
    "parameter": "valueName value",
    "geocode": "valueName value",
}


def _assert_schema_order(element: ET.Element) -> int:
    name = element.tag.removeprefix(NS)
    assert element.tag == NS + name, f"{element.tag} is outside the CAP namespace"
    if name not in SCHEMA:
        assert len(element) == 0, f"<{name}> should be a leaf"
        return 1
    order = SCHEMA[name].split()
    positions = [order.index(child.tag.removeprefix(NS)) for child in element]
    assert positions == sorted(positions), f"children of <{name}> out of schema order"
    return 1 + sum(_assert_schema_order(child) for child in element)


@pytest.mark.parametrize("message", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_written_xml_follows_the_schema_order(message: CapMessage) -> None:
    root = ET.fromstring(to_xml(message).encode())  # noqa: S314 - our own output
    assert root.tag == NS + "alert"
    assert _assert_schema_order(root) > 8


def test_full_info_writes_every_modelled_element() -> None:
    root = ET.fromstring(to_xml(_alert(infos=(FULL_INFO,))).encode())  # noqa: S314
    info = root.find(NS + "info")
    assert info is not None
    names = {child.tag.removeprefix(NS) for child in info}
    assert names == set(SCHEMA["info"].split()) - {
        "audience", "onset", "contact", "resource",
    }  # fmt: skip
    polygon = root.find(f"{NS}info/{NS}area/{NS}polygon[2]")
    assert polygon is not None
    assert polygon.text == "0.0,-179.5 0.00001,179.5 -89.9,0.0 0.0,-179.5"  # no exponent notation


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 12, 4, 17, 51, 39, tzinfo=UTC), "2026-12-04T17:51:39-00:00"),
        (datetime(2026, 12, 4, 18, 51, 39, tzinfo=BANGUI), "2026-12-04T18:51:39+01:00"),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=9, minutes=30))),
            "2026-01-02T03:04:05-09:30",
        ),
        (datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC), "2026-01-02T03:04:05-00:00"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05-00:00"),
    ],
    ids=["utc", "plus-one", "minus-nine-thirty", "fraction-dropped", "year-padded"],
)
def test_cap_time(moment: datetime, expected: str) -> None:
    assert cap_time(moment) == expected


def test_cap_time_refuses_naive() -> None:
    with pytest.raises(CapError, match="naive"):
        cap_time(datetime(2026, 1, 1))


def test_reference() -> None:
    assert reference(ORIGINAL) == "vigil@minusca.example,vigil-alert-42,2026-12-04T17:51:39-00:00"


def test_non_utc_offsets_keep_their_offset() -> None:
    message = _alert(sent=datetime(2026, 12, 4, 18, 51, 39, tzinfo=BANGUI))
    parsed = parse(to_xml(message))
    assert parsed.sent == message.sent
    assert parsed.sent.utcoffset() == timedelta(hours=1)
    assert parse(to_xml(ORIGINAL)).sent.utcoffset() == timedelta(0)


# ---------------------------------------------------------------------------- refusals by to_xml

NAIVE = datetime(2026, 12, 4, 17, 51, 39)
REFUSED_MESSAGES = [
    (_alert(identifier=""), "identifier must not be empty"),
    (_alert(identifier="vigil alert"), "identifier must not contain spaces"),
    (_alert(identifier="vigil,42"), "identifier must not contain"),
    (_alert(sender="a<b"), "sender must not contain"),
    (_alert(sender="a&b"), "sender must not contain"),
    (_alert(sent=NAIVE), "sent must be timezone-aware"),
    (_alert(sent=SENT.replace(microsecond=5)), "fractional seconds"),
    (_alert(status="Real"), "status must be one of Actual"),
    (_alert(msg_type="Notice"), "msg_type must be one of"),
    (_alert(scope="Secret"), "scope must be one of"),
    (_alert(restriction=None), "scope Restricted needs a restriction"),
    (_alert(scope="Private", addresses=None), "scope Private needs addresses"),
    (_alert(infos=()), "msgType Alert needs at least one info"),
    (_alert(msg_type="Update"), "msgType Update needs references"),
    (_alert(msg_type="Cancel", infos=()), "msgType Cancel needs references"),
    (_alert(msg_type="Ack", infos=()), "msgType Ack needs references"),
    (_alert(msg_type="Update", infos=(), references=(reference(ORIGINAL),)), "needs at least one"),
    (_alert(msg_type="Cancel", references=("a,b",)), r"references\[0\] must be 'sender"),
    (_alert(msg_type="Cancel", references=("a,b,yesterday",)), "not a CAP date-time"),
    (_alert(msg_type="Cancel", references=("a b,c,2026-01-01T00:00:00-00:00",)), "sender"),
    (_alert(note="bell \x07"), "U\\+0007"),
    (_alert(infos=(_info(urgency="Now"),)), r"infos\[0\].urgency must be one of"),
    (_alert(infos=(_info(severity="Bad"),)), "severity must be one of"),
    (_alert(infos=(_info(certainty="Sure"),)), "certainty must be one of"),
    (_alert(infos=(_info(categories=()),)), "at least one category"),
    (_alert(infos=(_info(categories=("Military",)),)), "categories must be one of"),
    (_alert(infos=(_info(response_types=("Run",)),)), "response_types must be one of"),
    (_alert(infos=(_info(event=""),)), "event must not be empty"),
    (_alert(infos=(_info(expires=NAIVE),)), "expires must be timezone-aware"),
    (_alert(infos=(_info(parameters=(("", "x"),)),)), "name must not be empty"),
    (_alert(infos=(_info(areas=(CapArea(""),)),)), "description must not be empty"),
    (_alert(infos=(_info(areas=(CapArea("a", polygons=(RING[:3],)),)),)), "at least 4"),
    (
        _alert(infos=(_info(areas=(CapArea("a", polygons=((*RING[:3], RING[1]),)),)),)),
        "not closed",
    ),
    (
        _alert(
            infos=(
                _info(areas=(CapArea("a", polygons=(((91.0, 0.0), *RING[1:3], (91.0, 0.0)),)),)),
            )
        ),
        r"latitude 91.0 is outside \[-90, 90\]",
    ),
    (
        _alert(
            infos=(
                _info(
                    areas=(CapArea("a", polygons=(((0.0, -180.5), *RING[1:3], (0.0, -180.5)),)),)
                ),
            )
        ),
        r"longitude -180.5 is outside \[-180, 180\]",
    ),
    (
        _alert(infos=(_info(areas=(CapArea("a", polygons=(((float("nan"), 0.0), *RING[1:]),)),)),)),
        "latitude nan is outside",
    ),
]


@pytest.mark.parametrize(
    ("message", "reason"),
    REFUSED_MESSAGES,
    ids=[reason.replace("\\", "") for _, reason in REFUSED_MESSAGES],
)
def test_to_xml_refuses(message: CapMessage, reason: str) -> None:
    with pytest.raises(CapError, match=reason):
        to_xml(message)


def test_to_xml_refuses_a_document_over_the_limit() -> None:
    huge = _alert(infos=(_info(description="x" * cap.MAX_DOCUMENT_BYTES),))
    with pytest.raises(CapError, match="over the"):
        to_xml(huge)


# ---------------------------------------------------------------------------- refusals by parse

GOOD = to_xml(ORIGINAL)


def _edit(old: str, new: str, document: str = GOOD) -> str:
    assert old in document
    return document.replace(old, new, 1)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>"""
EXTERNAL_ENTITY = _edit(
    '<?xml version="1.0" encoding="UTF-8"?>\n',
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE alert [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n',
).replace("<note>", "<note>&secret;")
REFUSED_DOCUMENTS = {
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE or ENTITY"),
    "external entity": (EXTERNAL_ENTITY, "DOCTYPE or ENTITY"),
    "lowercase doctype": (_edit("<alert ", "<!doctype alert>\n<alert "), "DOCTYPE or ENTITY"),
    "entity without doctype": (_edit("<alert ", '<!ENTITY x "y">\n<alert '), "DOCTYPE or ENTITY"),
    "utf-16 document": (GOOD.replace("UTF-8", "UTF-16").encode("utf-16"), "not valid UTF-8"),
    "declared latin-1": (GOOD.replace("UTF-8", "ISO-8859-1"), "declares encoding 'ISO-8859-1'"),
    "over 1 MiB": (GOOD + " " * cap.MAX_DOCUMENT_BYTES, "over the"),
    "over 1 MiB as bytes": ((GOOD + " " * cap.MAX_DOCUMENT_BYTES).encode(), "over the"),
    "not xml": ("this is not a CAP alert", "not well-formed XML"),
    "truncated": (GOOD[:200], "not well-formed XML"),
    "empty": (b"", "not well-formed XML"),
    "wrong namespace": (GOOD.replace("cap:1.2", "cap:1.1"), "root element must be <alert>"),
    "no namespace": (GOOD.replace(' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', ""), "root"),
    "wrong root": (
        '<feed xmlns="urn:oasis:names:tc:emergency:cap:1.2"><alert/></feed>',
        "root element must be <alert>",
    ),
    "missing sent": (
        _edit("  <sent>2026-12-04T17:51:39-00:00</sent>\n", ""),
        "missing its required <sent>",
    ),
    "missing event": (
        _edit("    <event>Armed clash</event>\n", ""),
        "missing its required <event>",
    ),
    "missing category": (_edit("    <category>Security</category>\n", ""), "required <category>"),
    "unknown status": (_edit("<status>Actual", "<status>Real"), "<status> must be one of"),
    "unknown msgType": (_edit("<msgType>Alert", "<msgType>Notice"), "<msgType> must be one of"),
    "unknown urgency": (_edit("<urgency>Immediate", "<urgency>Now"), "<urgency> must be one of"),
    "unknown category": (_edit("<category>Security", "<category>Mil"), "categories must be one"),
    "enum with spaces": (_edit("<status>Actual", "<status> Actual"), "<status> must be one of"),
    "unknown element": (
        _edit("<scope>", "<priority>1</priority>\n  <scope>"),
        "may not contain <priority>",
    ),
    "out of order": (
        _edit(
            "  <status>Actual</status>\n  <msgType>Alert</msgType>\n",
            "  <msgType>Alert</msgType>\n  <status>Actual</status>\n",
        ),
        "<status> is out of order in <alert>",
    ),
    "duplicate": (_edit("<scope>", "<scope>Public</scope><scope>"), "more than one <scope>"),
    "text in container": (_edit("<info>", "<info>oops"), "holds text outside"),
    "element in leaf": (_edit("<headline>", "<headline><b>x</b>"), "<headline> must hold text"),
    "foreign element in info": (
        _edit("<info>", '<info><x:y xmlns:x="urn:x"/>'),
        "element from another namespace",
    ),
    "Z time": (_edit("17:51:39-00:00", "17:51:39Z"), "not a CAP date-time"),
    "fractional time": (_edit("17:51:39-00:00", "17:51:39.5-00:00"), "not a CAP date-time"),
    "impossible date": (_edit("2026-12-04T", "2026-02-30T"), "not a real date-time"),
    "impossible offset": (_edit("17:51:39-00:00", "17:51:39+01:75"), "impossible UTC offset"),
    "restricted without restriction": (
        _edit("  <restriction>MINUSCA staff with need to know</restriction>\n", ""),
        "needs a restriction",
    ),
    "bad identifier": (_edit("vigil-alert-42", "vigil alert 42"), "must not contain spaces"),
    "nul character reference": (_edit("<headline>", "<headline>&#0;"), "not well-formed XML"),
    "signature then cap element": (
        _edit("</alert>", f'<s:Signature xmlns:s="{XMLDSIG}"/><note>late</note></alert>'),
        "after its signature",
    ),
    "foreign element at the end of alert": (
        _edit("</alert>", '<x:extra xmlns:x="urn:x"/></alert>'),
        "element from another namespace",
    ),
}


def _polygon_doc(polygon: str) -> str:
    return _edit(
        "  </info>",
        f"    <area><areaDesc>a</areaDesc><polygon>{polygon}</polygon></area>\n  </info>",
    )


REFUSED_DOCUMENTS |= {
    "polygon not pairs": (_polygon_doc("1 2 3 4"), "not 'lat,lon'"),
    "polygon with words": (_polygon_doc("a,b c,d e,f a,b"), "not 'lat,lon'"),
    "polygon open": (_polygon_doc("0,0 0,1 1,1 1,0"), "not closed"),
    "polygon nan": (_polygon_doc("nan,0 0,1 1,1 nan,0"), "not 'lat,lon'"),
    "polygon out of range": (_polygon_doc("0,0 0,181 1,1 0,0"), "longitude 181.0 is outside"),
}


@pytest.mark.parametrize(
    ("document", "reason"), REFUSED_DOCUMENTS.values(), ids=REFUSED_DOCUMENTS.keys()
)
def test_parse_refuses(document: str | bytes, reason: str) -> None:
    with pytest.raises(CapError, match=reason):
        parse(document)


def test_parse_refuses_non_documents() -> None:
    with pytest.raises(CapError, match="text or bytes"):
        parse(42)  # type: ignore[arg-type]


def test_parse_accepts_valid_cap_it_does_not_model() -> None:
    # A partner's alert with elements Vigil drops: accepted, the rest read as usual.
    document = (
        _edit("<scope>", "<source>JOC</source>\n  <scope>")
        .replace("  <info>", "  <code>IPAWSv1.0</code>\n  <info>", 1)
        .replace(
            "    <headline>",
            "    <audience>all</audience>\n    <onset>2026-12-04T18:00:00+01:00</onset>\n"
            "    <headline>",
        )
        .replace(
            "  </info>",
            "    <contact>JOC</contact>\n"
            "    <resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
            "<uri>https://x.example/m.png</uri></resource>\n"
            "    <area><areaDesc>a</areaDesc><circle>5.7,20.6 10</circle>"
            "<altitude>100</altitude><ceiling>200</ceiling></area>\n"
            "  </info>",
        )
        .replace("</alert>", f'<s:Signature xmlns:s="{XMLDSIG}"/></alert>')
    )
    parsed = parse(document)
    assert parsed.infos[0].areas == (CapArea("a"),)
    assert dataclasses.replace(parsed.infos[0], areas=()) == ORIGINAL.infos[0]


def test_missing_language_reads_as_the_cap_default() -> None:
    parsed = parse(_edit("    <language>en</language>\n", ""))
    assert parsed.infos[0].language == "en-US"


def test_parse_wraps_every_parser_failure() -> None:
    # Random cuts of a good document: each is either a valid message or a CapError, never other.
    for cut in range(0, len(GOOD), 7):
        with contextlib.suppress(CapError):
            parse(GOOD[:cut] + GOOD[cut + 3 :])


# ---------------------------------------------------------------------------- property

_XML_TEXT = st.text(
    st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters="\t\n\r"
    ).filter(lambda c: c not in "\ufffe\uffff"),
    max_size=30,
)
_ID = st.text(
    st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc", "Z"), exclude_characters=",<&"
    ).filter(lambda c: not c.isspace() and c not in "\ufffe\uffff"),
    min_size=1,
    max_size=20,
)
_NAME = _XML_TEXT.filter(bool)
_ZONES = st.sampled_from([UTC, BANGUI, timezone(-timedelta(hours=3, minutes=30))])
_TIMES = st.builds(
    lambda d, z: d.replace(tzinfo=z),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30)),
    _ZONES,
).map(lambda d: d.replace(microsecond=0))
_PAIRS = st.lists(st.tuples(_NAME, _XML_TEXT), max_size=3).map(tuple)


@st.composite
def _rings(draw: st.DrawFn) -> tuple[tuple[float, float], ...]:
    lat = st.floats(-90, 90, allow_nan=False)
    lon = st.floats(-180, 180, allow_nan=False)
    points = draw(st.lists(st.tuples(lat, lon), min_size=3, max_size=6))
    return (*points, points[0])


_AREAS = st.builds(
    CapArea,
    description=_NAME,
    polygons=st.lists(_rings(), max_size=2).map(tuple),
    geocodes=_PAIRS,
)
_INFOS = st.builds(
    CapInfo,
    event=_NAME,
    urgency=st.sampled_from(cap.URGENCIES),
    severity=st.sampled_from(cap.SEVERITIES),
    certainty=st.sampled_from(cap.CERTAINTIES),
    headline=_XML_TEXT,
    description=_XML_TEXT,
    categories=st.lists(st.sampled_from(cap.CATEGORIES), min_size=1, max_size=3).map(tuple),
    response_types=st.lists(st.sampled_from(cap.RESPONSE_TYPES), max_size=3).map(tuple),
    instruction=st.none() | _XML_TEXT,
    sender_name=st.none() | _XML_TEXT,
    web=st.none() | _XML_TEXT,
    effective=st.none() | _TIMES,
    expires=st.none() | _TIMES,
    language=_NAME,
    event_codes=_PAIRS,
    parameters=_PAIRS,
    areas=st.lists(_AREAS, max_size=2).map(tuple),
)


@st.composite
def _messages(draw: st.DrawFn) -> CapMessage:
    msg_type = draw(st.sampled_from(cap.MSG_TYPES))
    scope = draw(st.sampled_from(cap.SCOPES))
    needs_info = msg_type in ("Alert", "Update")
    needs_refs = msg_type in ("Update", "Cancel", "Ack")
    references = draw(
        st.lists(
            st.builds(lambda s, i, t: f"{s},{i},{cap_time(t)}", _ID, _ID, _TIMES),
            min_size=1 if needs_refs else 0,
            max_size=3,
        )
    )
    return CapMessage(
        identifier=draw(_ID),
        sender=draw(_ID),
        sent=draw(_TIMES),
        msg_type=msg_type,
        infos=tuple(draw(st.lists(_INFOS, min_size=1 if needs_info else 0, max_size=2))),
        status=draw(st.sampled_from(cap.STATUSES)),
        scope=scope,
        restriction=draw(_NAME if scope == "Restricted" else st.none() | _XML_TEXT),
        addresses=draw(_NAME if scope == "Private" else st.none() | _XML_TEXT),
        references=tuple(references),
        note=draw(st.none() | _XML_TEXT),
        incidents=draw(st.none() | _XML_TEXT),
    )


@settings(max_examples=150, deadline=None)
@given(_messages())
def test_round_trip_property(message: CapMessage) -> None:
    assert parse(to_xml(message)) == message
