"""rq jobs. Thin, at stable import paths, taking ids not objects, safe to run twice."""

from __future__ import annotations

import logging

from server.units import service as units_service
from server.worker.context import current, job_session

log = logging.getLogger("vigil.jobs")


def reassign_aor_units() -> int:
    """Recompute which unit's AOR holds each report and incident (after an AOR change).

    Idempotent: it derives ``aor_unit_id`` from the current AORs, so a second run changes nothing.
    """
    with job_session() as session:
        updated = units_service.reassign_all_aor_units(
            session=session, mission=current().settings.mission
        )
    log.info("aor units reassigned", extra={"rows": updated})
    return updated
