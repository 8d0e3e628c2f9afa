"""Claims fetched and not started yet: a batch ahead while jobs are short, and a job one crash
from the dead-letter queue, waiting to run alone.

A worker that fetches only for free slots leaves Redis idle while it runs what it fetched, and
then waits a round trip with nothing to run: with short jobs the two take turns instead of
overlapping (a no-op job: a third of the drain rate lost). While the jobs it runs are short
(a moving average under SHORT seconds), the worker fetches up to one batch more than its free
slots, so the next batch is on its way while the current one runs. The claims wait here,
leased and renewed like running ones; a job that turns out long makes the average rise and
the worker stops fetching ahead, so no job waits long behind others while workers sit idle.

A job taken back from a worker process that died, or went silent, while holding it is counted
a crash, and so is every job beside it: one of them may have killed the process, and the rest
did nothing wrong. Once one more crash would send a job to the dead-letter queue (crashes =
max_crashes - 1), it runs alone: the worker releases everything else it fetched and has not
started, lets what runs finish, runs that job with nothing else held, and fetches again once
it has ended. A poison job then kills the process by itself and is dead-lettered alone; the
jobs that were beside it end as they would have. Earlier crashes do not isolate a job: after a
whole machine went down, every job it ran comes back with one crash, and they must not then
run one at a time. Until a fetch brings no such claim, the worker fetches one job at a time,
so that it does not fetch and release a whole batch per job.
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
        self.solo: str | None = None  # the id of a claim that runs alone, waiting or running
        self.cautious = False  # the last fetch brought a claim on its last chance: fetch one

    def __len__(self) -> int:
        return len(self.claims)

    def depth(self) -> int:
        """How many claims to hold beyond the free slots now."""
        return self.batch if self.seconds < SHORT else 0

    def ran(self, seconds: float) -> None:
        """A job ran for `seconds`."""
        self.seconds += (seconds - self.seconds) * WEIGHT

    def admit(self, claims: list[Claim]) -> list[Claim]:
        """Take fetched claims in; those returned are to be released unstarted, as the first
        claim on its last chance now waits to run alone (the worker fetches nothing while one
        waits or runs)."""
        suspect = next((claim for claim in claims if last_chance(claim)), None)
        self.cautious = suspect is not None
        if suspect is None:
            self.claims.extend(claims)
            return []
        released = [claim for claim in (*self.claims, *claims) if claim is not suspect]
        self.claims.clear()
        self.claims.append(suspect)
        self.solo = suspect.id
        return released

    def remove(self, job_id: str) -> Claim | None:
        """Take a waiting claim out (cancelled, or its lease lost)."""
        for claim in self.claims:
            if claim.id == job_id:
                self.claims.remove(claim)
                return claim
        return None


def last_chance(claim: Claim) -> bool:
    """One more crash would dead-letter it: it runs alone."""
    return claim.crashes > 0 and claim.crashes >= claim.max_crashes - 1
