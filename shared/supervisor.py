"""Background work (the outbox relay, every consumer) under one supervisor per service.

A background task that can die silently is a data-loss bug: each job here is restarted with backoff
whenever it crashes or returns before the service stops, its state is what `/readyz` reports, and
its counters are what `/metrics` exposes.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.kafka import sleep_or_stop

log = structlog.get_logger("hearth.supervisor")
Runner = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Job:
    name: str
    kind: str  # relay | consumer | worker
    run: Runner
    source: object = None  # what `metrics()` is read from
    up: bool = False
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, *, min_backoff: float = 0.5, max_backoff: float = 30.0):
        self.jobs: list[Job] = []
        self.stop = asyncio.Event()
        self.min_backoff, self.max_backoff = min_backoff, max_backoff

    def add(self, name: str, run: Runner, *, kind: str = "worker", source: object = None) -> Job:
        job = Job(name=name, kind=kind, run=run, source=source)
        self.jobs.append(job)
        return job

    def start(self) -> None:
        self.stop = asyncio.Event()
        for job in self.jobs:
            job.task = asyncio.create_task(self._keep_running(job), name=job.name)

    async def shutdown(self, timeout: float = 8.0) -> None:
        """Ask every job to finish its current work (flush, commit) and wait, bounded."""
        self.stop.set()
        tasks = [j.task for j in self.jobs if j.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            log.warning("background job did not stop in time; cancelled", job=task.get_name())
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def healthy(self) -> bool:
        return all(job.up for job in self.jobs)

    def states(self) -> dict[str, bool]:
        return {job.name: job.up for job in self.jobs}

    async def _keep_running(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.min_backoff
        while not self.stop.is_set():
            started = loop.time()
            job.up = True
            try:
                await job.run(self.stop)
                if self.stop.is_set():
                    break
                job.last_error = "returned before the service stopped"
                log.error("background job returned unexpectedly; restarting", job=job.name)
            except asyncio.CancelledError:
                job.up = False
                raise
            except Exception as exc:
                job.last_error = repr(exc)
                log.exception("background job crashed; restarting", job=job.name, backoff=backoff)
            job.up = False
            job.restarts += 1
            if loop.time() - started > 60:  # it had been healthy for a while: start over gently
                backoff = self.min_backoff
            await sleep_or_stop(self.stop, backoff)
            backoff = min(backoff * 2, self.max_backoff)
        job.up = False


class SupervisorCollector(Collector):
    """Prometheus view of the supervised jobs, read at scrape time (no global metric objects)."""

    def __init__(self, supervisor: Supervisor, service: str):
        self.supervisor, self.service = supervisor, service

    def collect(self):
        up = GaugeMetricFamily("hearth_background_up", "1 while the background job runs", labels=["job", "kind"])
        restarts = CounterMetricFamily("hearth_background_restarts", "Restarts after a crash", labels=["job"])
        families = {}
        for job in self.supervisor.jobs:
            up.add_metric([job.name, job.kind], 1.0 if job.up else 0.0)
            restarts.add_metric([job.name], job.restarts)
            metrics = job.source.metrics() if hasattr(job.source, "metrics") else {}
            for key, value in metrics.items():
                name = f"hearth_{job.kind}_{key}"
                if name not in families:
                    families[name] = GaugeMetricFamily(name, _HELP.get(key, key.replace("_", " ")), labels=["job"])
                families[name].add_metric([job.name], float(value))
        yield up
        yield restarts
        yield from families.values()


_HELP = {
    "lag": "Records behind the end of the assigned partitions (end offset minus committed)",
    "processed": "Events applied (first time)", "retried": "Handler attempts retried (transient or not)",
    "dead_lettered": "Events sent to the dead-letter topic", "commit_failures": "Offset commits that failed",
    "unhandled": "Records of event types this consumer has no handler for",
    "pending": "Outbox rows not yet published", "oldest_pending_seconds": "Age of the oldest unpublished row",
    "published": "Rows published by this replica", "holding_lease": "1 while this replica holds the relay lease",
}
