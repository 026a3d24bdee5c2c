"""The browser libraries Vigil's pages use (Leaflet, its marker-cluster plugin, h3-js), fetched
once at set-up time from the npm registry, pinned by version and checksum, and served by Vigil
itself: a JOC on a mission intranet has no CDN to reach.

No copy of a third-party file is committed. ``vigil assets fetch`` (run by ``scripts/_setup.sh``
and the Dockerfile) downloads each pinned package tarball, checks its sha512 against the
registry's integrity value recorded here, and unpacks the files pages need into the assets
directory (``VIGIL_ASSETS_DIR``). At run time nothing is fetched: a missing file is an error
that says which command to run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "PACKAGES",
    "AssetsMissingError",
    "Package",
    "asset_path",
    "check_installed",
    "fetch",
    "read_asset",
]

REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    """One npm package: its pinned version, the registry's integrity string for that
    version's tarball, and the files to unpack (paths inside ``package/``)."""

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]
    license: str

    @property
    def tarball_url(self) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return f"{REGISTRY}/{self.name}/-/{base}-{self.version}.tgz"


PACKAGES: tuple[Package, ...] = (
    Package(
        "leaflet",
        "1.9.4",
        "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        (
            "dist/leaflet.js",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
        ),
        "BSD-2-Clause",
    ),
    Package(
        "leaflet.markercluster",
        "1.5.3",
        "sha512-vPTw/Bndq7eQHjLBVlWpnGeLa3t+3zGiuM7fJwCkiMFq+nmRuG3RI3f7f4N4TDX7T4NpbAXpR2+NTRSEGfCSeA==",
        (
            "dist/leaflet.markercluster.js",
            "dist/MarkerCluster.css",
            "dist/MarkerCluster.Default.css",
        ),
        "MIT",
    ),
    Package(
        "h3-js",
        "4.5.0",
        "sha512-uKmdPc+DuarnR+XqZxEuWOMw7KzzKROrx3MLeJpFnMOs78S9M5eZ+X5RieS9UcSFQqbeXzbfWuX/W9Pyajinqw==",
        ("dist/h3-js.umd.js",),
        "Apache-2.0",
    ),
)


class AssetsMissingError(RuntimeError):
    """A page needs a browser library that was never fetched."""


def _verify(package: Package, data: bytes) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise ValueError(
            f"{package.name}@{package.version}: the downloaded tarball does not match its pinned "
            f"{algorithm} checksum; refusing to install it"
        )


def asset_path(root: Path, package: str, file: str) -> Path:
    """Where an unpacked file lives: ``<root>/<package>/<file>``."""
    return root / package / file


def install_tarball(root: Path, package: Package, data: bytes) -> list[Path]:
    """Check ``data`` against the pin and unpack the package's files under ``root``."""
    _verify(package, data)
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for file in package.files:
            member = archive.extractfile(f"package/{file}")
            if member is None:
                raise ValueError(f"{package.name}@{package.version} has no {file}")
            target = asset_path(root, package.name, file)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(member.read())
            written.append(target)
    (root / package.name / "VERSION").write_text(f"{package.version} {package.integrity}\n")
    return written


def _installed(root: Path, package: Package) -> bool:
    stamp = root / package.name / "VERSION"
    if not stamp.is_file() or stamp.read_text().split() != [package.version, package.integrity]:
        return False
    return all(asset_path(root, package.name, f).is_file() for f in package.files)


def fetch(root: Path, *, client: httpx.Client | None = None) -> list[str]:
    """Download and install every pinned package not already installed under ``root``.
    Returns the ``name@version`` of those installed now."""
    http = client or httpx.Client(timeout=120, follow_redirects=True)
    done = []
    try:
        for package in PACKAGES:
            if _installed(root, package):
                continue
            response = http.get(package.tarball_url)
            response.raise_for_status()
            install_tarball(root, package, response.content)
            done.append(f"{package.name}@{package.version}")
    finally:
        if client is None:
            http.close()
    return done


def check_installed(root: Path) -> None:
    missing = [f"{p.name}@{p.version}" for p in PACKAGES if not _installed(root, p)]
    if missing:
        raise AssetsMissingError(
            f"The map's browser libraries are not installed in {root} ({', '.join(missing)}): "
            "run `vigil assets fetch` once, where the npm registry is reachable."
        )


def read_asset(root: Path, package: str, file: str) -> bytes:
    """The bytes of one unpacked file (only files of the pinned packages are served)."""
    known = {(p.name, f) for p in PACKAGES for f in p.files}
    if (package, file) not in known:
        raise FileNotFoundError(f"{package}/{file} is not one of Vigil's pinned assets")
    path = asset_path(root, package, file)
    if not path.is_file():
        raise AssetsMissingError(
            f"{package}/{file} is missing from {root}: run `vigil assets fetch`."
        )
    return path.read_bytes()
