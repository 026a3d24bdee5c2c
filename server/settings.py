"""Typed settings, one class per concern, all read from ``VIGIL_*`` environment variables.

Embedded mode (the default) needs nothing configured: an SQLite file in the data directory,
jobs in-process, a secret key generated once and kept beside the database. Production mode
refuses to start on any of those defaults.
"""

from __future__ import annotations

import os
import secrets
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from geo import MAX_STORED_RESOLUTION, MIN_STORED_RESOLUTION

__all__ = [
    "AlertSettings",
    "AuthSettings",
    "CoverageSettings",
    "DatabaseSettings",
    "HotspotSettings",
    "InsecureSettingsError",
    "MissionSettings",
    "QueueSettings",
    "RunMode",
    "Settings",
    "SyncSettings",
    "default_data_dir",
]

MIN_SECRET_KEY_LENGTH = 32
DEFAULT_COVERAGE_RESOLUTION = 8
DEFAULT_DEMO_PASSWORD = "vigil-demo-2026"  # noqa: S105 - printed on start; refused in production


class InsecureSettingsError(ValueError):
    """Production mode was asked to start with a default or unsafe setting."""


class RunMode(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


def default_data_dir() -> Path:
    """Where the embedded database and the generated secret live (XDG data directory)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vigil"


def _env(prefix: str = "VIGIL_") -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", env_file=None)


class DatabaseSettings(BaseSettings):
    """``VIGIL_DATABASE_URL``: a SQLAlchemy URL; absent means an SQLite file in the data dir."""

    model_config = _env("VIGIL_DATABASE_")

    url: str | None = None
    #: Seconds a PostgreSQL statement may run before it is cancelled (SECURITY.md F5).
    statement_timeout_s: float = 30.0
    echo: bool = False


class QueueSettings(BaseSettings):
    """``VIGIL_REDIS_URL``: where rq jobs go; absent means jobs run in-process after commit."""

    model_config = _env()

    redis_url: str | None = None
    queue_name: str = "vigil"


class AuthSettings(BaseSettings):
    """Tokens, passwords and login throttling."""

    model_config = _env()

    secret_key: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1, le=12 * 60)
    #: Failed logins within ``lockout_window_minutes`` that soft-lock an account (Primero: 6/30).
    max_failed_logins: int = Field(default=6, ge=1)
    lockout_window_minutes: int = Field(default=15, ge=1)
    demo_password: SecretStr | None = None
    #: argon2id cost; the defaults are argon2-cffi's RFC 9106 low-memory profile.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8_192)
    argon2_parallelism: int = Field(default=4, ge=1)


class MissionSettings(BaseSettings):
    """What the mission analyses at: H3 resolutions, merge windows, input limits."""

    model_config = _env()

    h3_resolutions: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [5, 6, 7, 8, 9])
    #: Incidents of one family closer than this in space and time are suggested for merging.
    merge_max_km: float = Field(default=10.0, gt=0)
    merge_max_hours: float = Field(default=48.0, gt=0)
    #: How far in the future an occurred-at may be (device clocks drift) before it is refused.
    future_tolerance_minutes: int = Field(default=10, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_size_max: int = Field(default=1000, ge=10)

    @field_validator("h3_resolutions", mode="before")
    @classmethod
    def _parse_resolutions(cls, value: Any) -> Any:
        # "5-9" or "5,6,7" from the environment; a list from code.
        if isinstance(value, str):
            text = value.strip()
            if "-" in text:
                low, high = (int(part) for part in text.split("-", 1))
                return list(range(low, high + 1))
            return [int(part) for part in text.split(",") if part.strip()]
        return value

    @field_validator("h3_resolutions")
    @classmethod
    def _check_resolutions(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("at least one H3 resolution is needed")
        resolutions = sorted(set(value))
        if resolutions[0] < MIN_STORED_RESOLUTION or resolutions[-1] > MAX_STORED_RESOLUTION:
            raise ValueError(
                f"H3 resolutions must lie in {MIN_STORED_RESOLUTION}..{MAX_STORED_RESOLUTION} "
                "(the resolutions reports store cells for)"
            )
        return resolutions

    @property
    def coarsest_resolution(self) -> int:
        return self.h3_resolutions[0]

    @property
    def finest_resolution(self) -> int:
        return self.h3_resolutions[-1]


class HotspotSettings(BaseSettings):
    """``VIGIL_HOTSPOT_*``: what the threat picture is computed over, and how often."""

    model_config = _env("VIGIL_HOTSPOT_")

    #: Windows (days) kept as stored snapshots; any other window is computed on request.
    windows_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [30, 365])
    #: Gi* neighbourhood radius in grid steps.
    k: int = Field(default=1, ge=1, le=5)
    #: A cell is classed hot or cold only if its neighbourhood holds at least this many incidents.
    min_local_count: int = Field(default=3, ge=1)
    #: Analysis universes larger than this are refused (choose a coarser resolution or unit).
    max_cells: int = Field(default=250_000, ge=1000)
    #: AORs with fewer cells than this at a resolution are not analysed at it.
    min_cells: int = Field(default=30, ge=1)
    #: Small counts of sensitive families below this are never shown outside protection.
    suppression_k: int = Field(default=5, ge=2)
    #: The finest resolution at which sensitive families are shown outside protection.
    sensitive_max_resolution: int = Field(default=6, ge=4, le=10)
    #: Precursor index (weighted doublings of leading indicators over the cell's own past) at
    #: which a cell is flagged: e.g. incitement and threats both up from nothing, or three
    #: incitement reports where there were none.
    precursor_threshold: float = Field(default=2.0, gt=0)
    #: Every snapshot is recomputed this often (windows move with time).
    refresh_minutes: int = Field(default=60, ge=1)
    #: How often changed AORs are looked for and recomputed.
    dirty_poll_seconds: int = Field(default=60, ge=1)
    #: Snapshots kept per (AOR, resolution, window, audience), for change detection.
    retention: int = Field(default=5, ge=1)
    #: Run the recompute loop inside `vigil serve` when there is no Redis (embedded mode).
    background: bool = True

    @field_validator("windows_days", mode="before")
    @classmethod
    def _parse_windows(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value


class CoverageSettings(BaseSettings):
    """``VIGIL_COVERAGE_*``: patrol coverage, protection gaps and what a gap allows."""

    model_config = _env("VIGIL_COVERAGE_")

    #: The working resolution of patrol coverage; coverage is also kept at every coarser
    #: mission resolution. Default: 8 (cells of ~0.7 km²), or the mission's finest below it.
    resolution: int | None = Field(default=None, ge=4, le=10)
    #: A gap between two fixes longer than this is a signal loss: nothing is credited across it.
    max_gap_minutes: float = Field(default=30.0, gt=0)
    #: The hotspot window whose stored snapshots give the threat (one of VIGIL_HOTSPOT_WINDOWS).
    threat_window_days: int = Field(default=30, ge=1)
    #: Incidents at least this severe in the last ``flash_hours`` make their cell threatened.
    flash_min_severity: float = Field(default=8.0, ge=0, le=10)
    flash_hours: float = Field(default=72.0, gt=0)
    #: The longest any threatened cell may go without presence, and the floor however high
    #: the threat (see geo.gaps).
    base_allowed_hours: float = Field(default=168.0, gt=0)
    min_allowed_hours: float = Field(default=12.0, gt=0)
    #: A protected site in the cell multiplies its allowed gap by this.
    site_allowed_factor: float = Field(default=0.5, gt=0, le=1)
    #: Hours uncovered are capped here; a cell never visited counts as this.
    uncovered_cap_hours: float = Field(default=720.0, gt=0)
    #: Ground distance over straight-line distance for tasking routes (roads and tracks).
    detour_factor: float = Field(default=1.3, ge=1, le=3)
    #: How often patrols with new fixes are looked for (their coverage is also queued at once).
    dirty_poll_seconds: int = Field(default=30, ge=1)


class SyncSettings(BaseSettings):
    """``VIGIL_SYNC_*``: offline sync limits (advertised to devices by ``/sync/v1/hello``)."""

    model_config = _env("VIGIL_SYNC_")

    max_batch_bytes: int = Field(default=512 * 1024, ge=4096)
    max_batch_ops: int = Field(default=200, ge=1, le=5000)
    max_chunk_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    #: Largest attachment accepted (a few minutes of audio, a dozen photos' worth).
    max_attachment_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    #: Longer than any offline window: an unfinished upload survives a month in the bush.
    upload_expiry_days: int = Field(default=45, ge=1)
    #: Removals are remembered this long; a device away longer does a replacement sync.
    tombstone_horizon_days: int = Field(default=180, ge=1)
    min_client_version: str = "1.0"
    pull_page_max: int = Field(default=500, ge=1, le=5000)
    #: Sync requests served at once; more wait (no thread, no connection held) and after
    #: ``admission_wait_s`` get 503 + Retry-After. Keep it below the DB pool size (15).
    max_concurrent_requests: int = Field(default=8, ge=1, le=64)
    admission_wait_s: float = Field(default=20.0, gt=0)
    #: Where attachment bytes live; defaults to ``<data_dir>/attachments``.
    attachments_dir: Path | None = None


def default_assets_dir() -> Path:
    """Inside the Python installation (the venv, the image), next to the code that uses the
    files: fetched once per installation, shared by every data directory."""
    return Path(sys.prefix) / "share" / "vigil" / "web-assets"


class MapSettings(BaseSettings):
    """``VIGIL_MAP_*``: the threat map and the JOC page."""

    model_config = _env("VIGIL_MAP_")

    #: Leaflet, its plugins and h3-js, installed by ``vigil assets fetch``.
    assets_dir: Path = Field(default_factory=default_assets_dir)
    #: An offline basemap the mission provides: an MBTiles (.mbtiles) or PMTiles (.pmtiles)
    #: file of raster tiles, served by Vigil at /maps/tiles/{z}/{x}/{y}.
    basemap: Path | None = None
    #: Attribution shown for the mission's basemap.
    basemap_attribution: str = "Mission basemap"
    #: An online tile layer offered as an optional extra (off by default; never required),
    #: e.g. ``https://tile.openstreetmap.org/{z}/{x}/{y}.png``.
    online_tiles_url: str | None = None
    online_tiles_attribution: str = "© OpenStreetMap contributors"
    #: Seconds between refreshes of the JOC page.
    joc_refresh_seconds: int = Field(default=60, ge=10)
    #: Patrol tracks and incidents shown: the last this many hours by default.
    default_window_hours: int = Field(default=72, ge=1, le=24 * 366)
    #: Idle time after which a browser session ends, and its absolute lifetime (SECURITY S8).
    session_idle_minutes: int = Field(default=30, ge=1, le=30)
    session_max_hours: int = Field(default=12, ge=1, le=12)


class AlertSettings(BaseSettings):
    """``VIGIL_ALERTS_*``: raising, routing and delivering alerts."""

    model_config = _env("VIGIL_ALERTS_")

    enabled: bool = True
    #: The unit that takes alerts for cells outside every AOR (and unknown component units).
    operations_centre_code: str = "joc"
    #: Seconds between runs of the alert tick (group flushes, escalation, auto-resolve,
    #: undelivered sweeps); escalation timers on rq fire on time regardless.
    tick_seconds: int = Field(default=15, ge=1, le=600)
    #: Outbox rows taken per transaction by the drain job.
    outbox_batch: int = Field(default=200, ge=1, le=5000)
    #: Sender of CAP messages (CAP ``sender``: no spaces), and the link base for alert views.
    cap_sender: str = "vigil@mission.local"
    public_base_url: str = "http://127.0.0.1:8000"
    #: Hotspot, surge and precursor alerts are raised for these windows only (days).
    hotspot_window_days: int = Field(default=30, ge=1)
    #: ... at this resolution, from the mission root's picture (one alert per cell, not one
    #: per nested AOR that analyses it).
    hotspot_resolution: int = Field(default=6, ge=4, le=10)
    #: Delivery: webhook timeout, SMTP server for e-mail recipients.
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "vigil-alerts@mission.local"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    #: Notifications that stayed undelivered this long are handed to a delivery job again.
    redeliver_after_s: int = Field(default=60, ge=5)


class Settings(BaseSettings):
    """All of Vigil's settings. Build once per process with :meth:`load`; never at import time."""

    model_config = _env()

    mode: RunMode = RunMode.EMBEDDED
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    mission: MissionSettings = Field(default_factory=MissionSettings)
    hotspots: HotspotSettings = Field(default_factory=HotspotSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    coverage: CoverageSettings = Field(default_factory=CoverageSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @model_validator(mode="after")
    def _coverage_within_the_mission(self) -> Settings:
        chosen = self.coverage.resolution
        if chosen is not None and chosen not in self.mission.h3_resolutions:
            raise ValueError(
                f"VIGIL_COVERAGE_RESOLUTION {chosen} must be one of the mission's resolutions "
                f"{self.mission.h3_resolutions}"
            )
        return self

    @property
    def coverage_resolution(self) -> int:
        """The working resolution of coverage (see :class:`CoverageSettings`)."""
        if self.coverage.resolution is not None:
            return self.coverage.resolution
        below = [r for r in self.mission.h3_resolutions if r <= DEFAULT_COVERAGE_RESOLUTION]
        return max(below) if below else self.mission.coarsest_resolution

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.mode is not RunMode.PRODUCTION:
            return self
        problems = []
        key = self.auth.secret_key.get_secret_value() if self.auth.secret_key else ""
        if len(key) < MIN_SECRET_KEY_LENGTH:
            problems.append(
                f"VIGIL_SECRET_KEY must be set to at least {MIN_SECRET_KEY_LENGTH} "
                "random characters"
            )
        if not self.database.url:
            problems.append("VIGIL_DATABASE_URL must be set (PostgreSQL with PostGIS)")
        demo = self.auth.demo_password
        if demo is not None and demo.get_secret_value() == DEFAULT_DEMO_PASSWORD:
            problems.append("VIGIL_DEMO_PASSWORD must not be the published demo default")
        if problems:
            raise InsecureSettingsError("production mode refuses: " + "; ".join(problems))
        return self

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment (and overrides) and fill embedded-mode defaults."""
        settings = cls(**overrides)
        if settings.mode is RunMode.EMBEDDED:
            settings = settings._with_embedded_defaults()
        return settings

    def _with_embedded_defaults(self) -> Settings:
        database = self.database
        auth = self.auth
        if database.url is None:
            database = database.model_copy(
                update={"url": f"sqlite:///{self.data_dir / 'vigil.sqlite3'}"}
            )
        if auth.secret_key is None:
            auth = auth.model_copy(update={"secret_key": SecretStr(self._kept_secret_key())})
        return self.model_copy(update={"database": database, "auth": auth})

    def _kept_secret_key(self) -> str:
        # Generated once and kept, so tokens survive a restart of the embedded server.
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key)
        return key

    @property
    def attachments_dir(self) -> Path:
        return self.sync.attachments_dir or self.data_dir / "attachments"

    @property
    def database_url(self) -> str:
        if self.database.url is None:
            raise InsecureSettingsError("no database URL: build settings with Settings.load()")
        return self.database.url

    @property
    def secret_key(self) -> str:
        if self.auth.secret_key is None:
            raise InsecureSettingsError("no secret key: build settings with Settings.load()")
        return self.auth.secret_key.get_secret_value()

    @property
    def demo_password(self) -> str:
        value = self.auth.demo_password
        return value.get_secret_value() if value else DEFAULT_DEMO_PASSWORD
