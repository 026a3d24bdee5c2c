# Vigil production image: the API (`vigil serve`) and, from the same image, the rq worker
# (`vigil worker`). docker-compose.yml shows how they are wired to PostGIS and Redis.
#
#   docker build -t vigil .
#
# Dependencies are pinned by constraints.txt, the same file CI installs from. Every runtime
# dependency ships manylinux wheels (GEOS, PROJ, GDAL, libpq and H3 are bundled in them), so the
# image needs no compiler and no system libraries beyond the slim base.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/vigil

WORKDIR /src
# Only what the package needs: no tests, no checkout clutter (see also .dockerignore).
COPY pyproject.toml README.md constraints.txt ./
COPY geo ./geo
COPY alerts ./alerts
COPY mobile_sync ./mobile_sync
COPY server ./server
# A regular (not editable) install: the image must not depend on /src.
# The map pages' browser libraries are fetched here, pinned and checksummed, into
# /opt/vigil/share/vigil/web-assets: the running container needs no internet.
RUN /opt/vigil/bin/pip install -c constraints.txt . \
    && /opt/vigil/bin/vigil --help > /dev/null \
    && /opt/vigil/bin/vigil assets fetch

# ---------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Field incident reporting and protection-threat mapping for peace operations" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid vigil --home-dir /var/lib/vigil --create-home \
       --shell /usr/sbin/nologin vigil

COPY --from=build /opt/vigil /opt/vigil

ENV PATH=/opt/vigil/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIGIL_DATA_DIR=/var/lib/vigil

USER vigil
WORKDIR /var/lib/vigil

EXPOSE 8000

# Production settings (VIGIL_MODE=production, VIGIL_DATABASE_URL, VIGIL_REDIS_URL,
# VIGIL_SECRET_KEY) come from the environment at run time, never from the image.
# Migrations: run `vigil db upgrade` once per deploy (docker-compose.yml does) and serve with
# --no-migrate, or drop --no-migrate for a single-replica setup that migrates on start.
CMD ["vigil", "serve", "--host", "0.0.0.0", "--port", "8000"]
