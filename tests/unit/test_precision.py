"""Which resolutions a location of a given precision may be counted at."""

from __future__ import annotations

import pytest

from geo import LocationPrecision, finest_supported_resolution
from geo.cells import average_edge_length_m


@pytest.mark.parametrize(
    ("precision", "accuracy", "expected"),
    [
        ("exact", 5.0, 10),
        ("exact", 80.0, 9),
        ("exact", 150.0, 9),
        ("exact", 250.0, 8),
        ("exact", None, 9),
        ("exact", 1200.0, 7),
        ("settlement", None, 7),
        ("area", None, 4),
        ("district", None, None),
        ("province", None, None),
        ("country", None, None),
        ("settlement", 5.0, 7),
    ],
    ids=lambda v: str(v),
)
def test_finest_supported_resolution(precision, accuracy, expected) -> None:
    assert finest_supported_resolution(precision, accuracy) == expected


def test_a_district_level_report_has_no_res8_cell() -> None:
    finest = finest_supported_resolution(LocationPrecision.DISTRICT)
    assert finest is None or finest < 8


@pytest.mark.parametrize("accuracy", [1.0, 30.0, 199.0, 201.0, 600.0, 5000.0, 30000.0])
def test_supported_cells_are_at_least_as_large_as_the_uncertainty(accuracy) -> None:
    resolution = finest_supported_resolution("exact", accuracy)
    if resolution is not None:
        assert average_edge_length_m(resolution) >= accuracy
        if resolution < 10:
            assert average_edge_length_m(resolution + 1) < accuracy


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="nowhere"):
        finest_supported_resolution("nowhere")
