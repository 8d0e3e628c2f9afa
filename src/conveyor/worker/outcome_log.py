"""One log line per ended attempt, at the level its ending deserves."""

from __future__ import annotations

import logging

from conveyor.job import Claim, Outcome, State

log = logging.getLogger("conveyor.worker")


def log_outcome(claim: Claim, outcome: Outcome, seconds: float) -> None:
    """One line per ended attempt, with the job id and function as structured fields."""
    if outcome.state is State.SUCCEEDED and not log.isEnabledFor(logging.INFO):
        return  # the common case pays nothing for a line nobody reads
    fields = {"job_id": claim.id, "function": claim.function}
    name, ms, state = claim.function, seconds * 1000, outcome.state
    error = outcome.error
    if state is State.SUCCEEDED:
        log.info("%s %s succeeded in %.1f ms", name, claim.id, ms, extra=fields)
    elif state is State.RETRYING and error is not None:
        log.warning(
            "%s %s failed (%s: %s), retrying in %.1f s",
            name,
            claim.id,
            error.type,
            error.message,
            outcome.delay,
            extra=fields,
        )
    elif state is State.FAILED and error is not None:
        log.error(
            "%s %s failed for good (%s: %s) after %d attempt(s)",
            name,
            claim.id,
            error.type,
            error.message,
            claim.attempt,
            extra=fields,
        )
    else:
        log.info("%s %s %s after %.1f ms", name, claim.id, state.value, ms, extra=fields)
