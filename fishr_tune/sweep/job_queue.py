"""Random search as a lazy Ray Tune searcher: jobs are handed out one at a time.

``tune.grid_search(jobs)`` expands (and deep-copies) the whole job list before the first trial
starts, quadratic in the number of jobs; this searcher walks a job iterator instead, so the
first trial starts at once whatever the sweep's size, and the driver holds only live jobs.
Jobs whose records already say they finished are skipped: that is how a sweep resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ray.tune.search import Searcher

from fishr_tune.sweep.plan import Job
from fishr_tune.sweep.trainable import OBJECTIVE


class JobQueue(Searcher):
    """Suggest the jobs of ``jobs`` in order, skipping those ``is_finished`` says are done.

    ``jobs`` is a sequence computed on access (plan.RandomJobs) or a tuple of explicit jobs.
    """

    def __init__(self, jobs: Sequence[Job], is_finished: Callable[[Job], bool]):
        super().__init__(metric=OBJECTIVE, mode="max")
        self._jobs = jobs
        self._next = 0
        self._is_finished = is_finished
        self.skipped = 0  # finished jobs of an earlier run (what a resume did not rerun)
        self.suggested = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Nothing to configure: the jobs are fixed."""
        return True

    def suggest(self, trial_id: str):
        """The next unfinished job, or FINISHED when none is left."""
        while self._next < len(self._jobs):
            job = self._jobs[self._next]
            self._next += 1
            if self._is_finished(job):
                self.skipped += 1
                continue
            self.suggested += 1
            return {"job": job.as_dict()}
        return Searcher.FINISHED

    @property
    def exhausted(self) -> bool:
        """Whether every job was handed out (or skipped as finished)."""
        return self._next >= len(self._jobs)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Nothing to learn: random search."""

    def save(self, checkpoint_path: str):
        """Nothing: the records are the state (a resumed sweep skips finished jobs)."""

    def restore(self, checkpoint_path: str):
        """Nothing to restore (see :meth:`save`)."""
