"""Structured JSON logs; request id and event id ride along via structlog's contextvars."""

import logging
import sys

import structlog


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
