"""Claims fetched ahead of free slots, while this worker's jobs are short.

A worker that fetches only for free slots leaves Redis idle while it runs what it fetched, and
then waits a round trip with nothing to run: with short jobs the two take turns instead of
overlapping (a no-op job: a third of the drain rate lost). While the jobs it runs are short
(a moving average under SHORT seconds), the worker fetches up to one batch more than its free
slots, so the next batch is on its way while the current one runs. The claims wait here,
leased and renewed like running ones; a job that turns out long makes the average rise and
the worker stops fetching ahead, so no job waits long behind others while workers sit idle.
"""

from __future__ import annotations

from collections import deque

from conveyor.job import Claim

SHORT = 0.01  # seconds: jobs shorter than this on average are fetched a batch ahead
WEIGHT = 0.1  # of the latest job in the moving average


class Ahead:
    def __init__(self, batch: int) -> None:
        self.batch = batch  # how many claims may wait, at most
        self.claims: deque[Claim] = deque()
        self.seconds = SHORT  # the moving average of job run times; starts on the border

    def __len__(self) -> int:
        return len(self.claims)

    def depth(self) -> int:
        """How many claims to hold beyond the free slots now."""
        return self.batch if self.seconds < SHORT else 0

    def ran(self, seconds: float) -> None:
        """A job ran for `seconds`."""
        self.seconds += (seconds - self.seconds) * WEIGHT

    def remove(self, job_id: str) -> Claim | None:
        """Take a waiting claim out (cancelled, or its lease lost)."""
        for claim in self.claims:
            if claim.id == job_id:
                self.claims.remove(claim)
                return claim
        return None
