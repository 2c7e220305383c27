"""Structured JSON logs; request id and event id ride along via structlog's contextvars."""

import logging
import sys
import time

import structlog


class QuietRepeats(logging.Filter):
    """One line per state change from a chatty library: a 60 s broker outage once wrote 8,489 lines.

    A message (by its template) repeats at most once per `window` seconds; the next line that gets
    through says how many were held back.
    """

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka", "kafka"), window: float = 60.0):
        super().__init__()
        self.prefixes, self.window = prefixes, window
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, held = self.seen.get(key, (None, 0))
        if last is not None and now - last < self.window:
            self.seen[key] = (last, held + 1)
            return False
        self.seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} like it held back)"
        return True


def configure_logging(*, level: str = "INFO", json: bool = True) -> None:
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False),
    ]
    structlog.configure(processors=processors, cache_logger_on_first_use=True,
                        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietRepeats) for f in handler.filters):
            handler.addFilter(QuietRepeats())
