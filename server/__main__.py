"""``python -m server`` is the ``vigil`` command."""

from server.cli import app

app(prog_name="vigil")
