"""Settings: embedded defaults need nothing; production refuses defaults."""

from __future__ import annotations

import stat

import pytest
from pydantic import ValidationError

from server.settings import DEFAULT_DEMO_PASSWORD, RunMode, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "VIGIL_MODE",
        "VIGIL_DATABASE_URL",
        "VIGIL_REDIS_URL",
        "VIGIL_SECRET_KEY",
        "VIGIL_H3_RESOLUTIONS",
        "VIGIL_DEMO_PASSWORD",
        "VIGIL_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_embedded_defaults_need_no_services(tmp_path) -> None:
    settings = Settings.load(data_dir=tmp_path)
    assert settings.mode is RunMode.EMBEDDED
    assert settings.database_url == f"sqlite:///{tmp_path / 'vigil.sqlite3'}"
    assert settings.queue.redis_url is None
    assert settings.mission.h3_resolutions == [5, 6, 7, 8, 9]


def test_embedded_secret_is_generated_once_and_kept_private(tmp_path) -> None:
    first = Settings.load(data_dir=tmp_path).secret_key
    second = Settings.load(data_dir=tmp_path).secret_key
    assert first == second and len(first) >= 32
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_environment_is_read_with_the_vigil_prefix(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", "postgresql+psycopg://u@db/vigil")
    monkeypatch.setenv("VIGIL_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("VIGIL_H3_RESOLUTIONS", "6-8")
    settings = Settings.load(data_dir=tmp_path)
    assert settings.database_url == "postgresql+psycopg://u@db/vigil"
    assert settings.queue.redis_url == "redis://cache:6379/0"
    assert settings.mission.h3_resolutions == [6, 7, 8]


@pytest.mark.parametrize("value", ["3-9", "5,11", ""], ids=["too-coarse", "too-fine", "empty"])
def test_resolutions_outside_the_stored_range_are_refused(tmp_path, monkeypatch, value) -> None:
    monkeypatch.setenv("VIGIL_H3_RESOLUTIONS", value)
    with pytest.raises(ValidationError):
        Settings.load(data_dir=tmp_path)


def test_production_refuses_missing_secret_and_database(tmp_path) -> None:
    with pytest.raises(ValidationError) as info:
        Settings.load(data_dir=tmp_path, mode="production")
    message = str(info.value)
    assert "VIGIL_SECRET_KEY" in message and "VIGIL_DATABASE_URL" in message
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_the_published_demo_password(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("VIGIL_DATABASE_URL", "postgresql+psycopg://u@db/vigil")
    monkeypatch.setenv("VIGIL_DEMO_PASSWORD", DEFAULT_DEMO_PASSWORD)
    with pytest.raises(ValidationError, match="VIGIL_DEMO_PASSWORD"):
        Settings.load(data_dir=tmp_path, mode="production")


def test_production_accepts_explicit_settings(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("VIGIL_DATABASE_URL", "postgresql+psycopg://u@db/vigil")
    settings = Settings.load(data_dir=tmp_path, mode="production")
    assert settings.secret_key == "k" * 48
    assert not (tmp_path / "secret_key").exists()


def test_coverage_works_at_res_8_or_the_finest_mission_resolution_below(
    tmp_path, monkeypatch
) -> None:
    assert Settings.load(data_dir=tmp_path).coverage_resolution == 8
    monkeypatch.setenv("VIGIL_H3_RESOLUTIONS", "5-7")
    assert Settings.load(data_dir=tmp_path).coverage_resolution == 7
    monkeypatch.setenv("VIGIL_H3_RESOLUTIONS", "5-10")
    monkeypatch.setenv("VIGIL_COVERAGE_RESOLUTION", "9")
    assert Settings.load(data_dir=tmp_path).coverage_resolution == 9


def test_a_coverage_resolution_outside_the_mission_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_H3_RESOLUTIONS", "5-8")
    monkeypatch.setenv("VIGIL_COVERAGE_RESOLUTION", "9")
    with pytest.raises(ValidationError, match="must be one of the mission's resolutions"):
        Settings.load(data_dir=tmp_path)
