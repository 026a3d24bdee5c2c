# shellcheck shell=bash
# Shared setup for scripts/test and scripts/demo. Source it; do not run it.
#
# Everything here is idempotent: each function checks first and only acts when something is
# missing, so running the scripts again costs seconds, and a fresh machine (CI's clean clone)
# gets the same result as a developer's.
#
# Functions:
#   vigil_python_env [EXTRA]     .venv exists and has the project (with [EXTRA]) installed
#   vigil_postgres URL           PostGIS installed, server running, database + extension exist
#   vigil_redis URL              Redis running and answering

VIGIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGIL_VENV="$VIGIL_ROOT/.venv"
VIGIL_PY="$VIGIL_VENV/bin/python"
# Records what the last successful install was made from; see _vigil_install_key.
VIGIL_STAMP="$VIGIL_VENV/.vigil-install"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	return 1
}

# Run a command as root: directly when we are root (CI, this machine), through password-less
# sudo on a developer's machine, otherwise fail and say what to run by hand.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "needs root: run  sudo $*  and try again"
	fi
}

# apt-get, non-interactive; the package lists are refreshed once per script run, and only when a
# package is actually missing (an update costs seconds and needs the network).
_VIGIL_APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found: install $* with your package manager"
	if [[ $_VIGIL_APT_UPDATED -eq 0 ]]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
		_VIGIL_APT_UPDATED=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "$@"
}

# ---------------------------------------------------------------------------- Python

# What an install depends on: the dependency declarations, the pins, the interpreter and where
# the checkout lives (an editable install points at it). Any change means "install again".
_vigil_install_key() {
	{
		cat "$VIGIL_ROOT/pyproject.toml" "$VIGIL_ROOT/constraints.txt"
		"$VIGIL_PY" -c 'import sys; print(sys.version)'
		echo "$VIGIL_ROOT"
	} | sha256sum | cut -d' ' -f1
}

_vigil_pick_python() {
	local candidate
	for candidate in "${PYTHON:-}" python3.11 python3; do
		[[ -n $candidate ]] || continue
		command -v "$candidate" >/dev/null || continue
		if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
			echo "$candidate"
			return 0
		fi
	done
	die "Python 3.11 or newer not found (set PYTHON=/path/to/python3.11)"
}

# vigil_python_env [EXTRA]: make .venv and install the project into it, editable, with the
# pinned versions from constraints.txt. EXTRA is "dev" for the test tools, or empty.
# An install with [dev] also satisfies a request without extras (the demo).
vigil_python_env() {
	local extra=${1:-} python key spec
	if [[ ! -x $VIGIL_PY ]]; then
		python=$(_vigil_pick_python) || return 1
		log "creating $VIGIL_VENV with $python ($("$python" --version 2>&1))"
		"$python" -m venv "$VIGIL_VENV" ||
			die "python -m venv failed (on Debian's own python: apt-get install python3-venv)" ||
			return 1
	fi
	key=$(_vigil_install_key)
	if [[ -f $VIGIL_STAMP && -x $VIGIL_VENV/bin/vigil ]]; then
		local stamp_key stamp_extra
		read -r stamp_key stamp_extra <"$VIGIL_STAMP" || true
		if [[ $stamp_key == "$key" && ($stamp_extra == "$extra" || -z $extra) ]]; then
			log "python environment up to date ($VIGIL_VENV)"
			return 0
		fi
	fi
	spec="."
	[[ -n $extra ]] && spec=".[$extra]"
	log "installing the project: pip install -c constraints.txt -e '$spec'"
	# -q keeps CI logs readable; pip still prints every error in full.
	(cd "$VIGIL_ROOT" && "$VIGIL_PY" -m pip install -q --disable-pip-version-check \
		-c constraints.txt -e "$spec") || return 1
	# Written last, so an interrupted install is retried next time.
	echo "$key $extra" >"$VIGIL_STAMP"
}

# ---------------------------------------------------------------------------- URLs

# Print "host port database" of a SQLAlchemy or redis URL (empty host = unix socket).
_vigil_url_parts() {
	"$VIGIL_PY" - "$1" "$2" <<'EOF'
import sys
from urllib.parse import urlsplit

url, default_port = urlsplit(sys.argv[1]), sys.argv[2]
print(url.hostname or "", url.port or default_port, url.path.lstrip("/") or "-")
EOF
}

_vigil_is_local() {
	case "$1" in "" | 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------------------- PostgreSQL

# The Debian cluster listening on PORT, as "VERSION NAME STATUS" (pg_lsclusters, from Debian's
# postgresql-common). Without pg_lsclusters: "VERSION - unknown", the newest version installed
# under /etc/postgresql, so that PostGIS can still be installed for it (but nothing started).
_vigil_pg_cluster() {
	local port=$1 version name cport status
	if command -v pg_lsclusters >/dev/null; then
		while read -r version name cport status _; do
			if [[ $cport == "$port" ]]; then
				echo "$version $name $status"
				return 0
			fi
		done < <(pg_lsclusters --no-header 2>/dev/null)
		return 1
	fi
	[[ -d /etc/postgresql ]] || return 1
	version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
	[[ -n $version ]] && echo "$version - unknown"
}

# Ask the server for something trivial; succeeds once it accepts connections.
# Connects to the maintenance database, as the test database may not exist yet.
_vigil_pg_answers() {
	"$VIGIL_PY" - "$1" <<'EOF'
import sys
import psycopg
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1]).set(drivername="postgresql", database="postgres")
with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3) as conn:
    conn.execute("SELECT 1")
EOF
}

# _vigil_wait_for WHAT SECONDS COMMAND...: retry quietly until COMMAND succeeds; on timeout run it
# once more with its errors shown (an authentication failure should not read as "not running").
_vigil_wait_for() {
	local what=$1 seconds=$2
	shift 2
	local deadline=$((SECONDS + seconds))
	until "$@" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			"$@" || true
			die "$what did not answer within ${seconds}s"
			return 1
		fi
		sleep 1
	done
}

# vigil_postgres URL: for a server on this machine, install PostGIS for its major version if
# missing and start the cluster if it is down; for any server, wait until it answers, then create
# the database and the postgis extension if they do not exist.
vigil_postgres() {
	local url=$1 host port database version cluster status
	read -r host port database < <(_vigil_url_parts "$url" 5432) || true
	[[ -n $port ]] || die "cannot parse the database URL $url" || return 1
	[[ $database != - ]] || die "no database name in $url" || return 1
	if _vigil_is_local "$host"; then
		if ! read -r version cluster status < <(_vigil_pg_cluster "$port"); then
			die "no local PostgreSQL cluster on port $port (pg_lsclusters lists them): install" \
				"postgresql, or point VIGIL_TEST_PG_URL at a running server" || return 1
		fi
		if [[ ! -f /usr/share/postgresql/$version/extension/postgis.control ]]; then
			log "PostGIS missing for PostgreSQL $version"
			apt_install "postgresql-$version-postgis-3" || return 1
		fi
		if [[ $cluster != - ]] && ! _vigil_pg_answers "$url" 2>/dev/null; then
			log "starting PostgreSQL $version/$cluster (was: $status)"
			as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || true
		fi
	fi
	_vigil_wait_for "PostgreSQL at ${host:-socket}:$port" 60 _vigil_pg_answers "$url" || return 1
	log "PostgreSQL answers at ${host:-socket}:$port; ensuring database $database with postgis"
	"$VIGIL_PY" - "$url" <<'EOF'
import sys
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1]).set(drivername="postgresql")
name = url.database
admin = url.set(database="postgres").render_as_string(hide_password=False)
with psycopg.connect(admin, autocommit=True) as conn:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
        print(f"creating database {name}", file=sys.stderr)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
    print(f"database {name}: postgis {version}", file=sys.stderr)
EOF
}

# ---------------------------------------------------------------------------- Redis

_vigil_redis_answers() {
	"$VIGIL_PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()' \
		"$1"
}

# vigil_redis URL: start a throwaway Redis (nothing kept on disk) when a local one is not
# answering, then wait for it.
vigil_redis() {
	local url=$1 host port _db
	read -r host port _db < <(_vigil_url_parts "$url" 6379) || true
	[[ -n $port ]] || die "cannot parse the Redis URL $url" || return 1
	if ! _vigil_redis_answers "$url" 2>/dev/null && _vigil_is_local "$host"; then
		command -v redis-server >/dev/null || apt_install redis-server || return 1
		log "starting redis-server on 127.0.0.1:$port"
		redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
			--dir "${TMPDIR:-/tmp}" >/dev/null || return 1
	fi
	_vigil_wait_for "Redis at $host:$port" 30 _vigil_redis_answers "$url" || return 1
	log "Redis answers at $host:$port"
}

# ---------------------------------------------------------------------------- web assets, browser

# The map pages' browser libraries (Leaflet, its cluster plugin, h3-js), fetched once from the
# npm registry, pinned and checksummed (server/maps/assets.py); nothing is fetched at run time.
vigil_web_assets() {
	if "$VIGIL_VENV/bin/vigil" assets check >/dev/null 2>&1; then
		return 0
	fi
	log "fetching the map pages' browser libraries: vigil assets fetch"
	"$VIGIL_VENV/bin/vigil" assets fetch
}

# Debian's chromium, which the browser tests (tests/browser) drive through Playwright; no
# browser is downloaded by Playwright itself.
vigil_chromium() {
	command -v chromium >/dev/null && return 0
	apt_install chromium || return 1
	command -v chromium >/dev/null || die "chromium installed but not on PATH"
}
