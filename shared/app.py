"""The frame every service app is built in: middleware, errors, health, metrics and the lifespan."""

import asyncio
import gc
import functools
import uuid
from datetime import timedelta
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import iter_route_contexts
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import TokenVerifier
from shared.config import HearthSettings
from shared.context import CLIENT_HEADER, client_var, parse_client, request_id_var
from shared.db import make_engine, make_sessionmaker, read_sessionmaker
from shared.errors import install_error_handlers, problem
from shared.faults import is_transient
from shared.guards import install_guards
from shared.kafka import EventConsumer, make_producer, topic_map
from shared.logging import configure_logging
from shared.openapi import install_openapi
from shared.outbox import OutboxRelay
from shared.supervisor import Supervisor, SupervisorCollector
from shared.uploads import MULTIPART_ENVELOPE_BYTES

log = structlog.get_logger("hearth.app")
_CLIENT_HEADER = CLIENT_HEADER.lower().encode()  # ASGI header names are lower-case bytes
StartupHook = Callable[[FastAPI], Awaitable[None]]


class RequestContextMiddleware:
    """Request id and client into context (logs, events); refuse bodies over the size limit.

    Upload routes (`upload_routes`: the routes marked by shared.uploads.upload_route) have a larger limit,
    `upload_body_bytes`; every other route keeps `max_body_bytes`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, retry_after: int = 5, upload_body_bytes: int = 0,
                 upload_routes: list = ()):
        self.app, self.max_body_bytes, self.retry_after = app, max_body_bytes, retry_after
        self.upload_body_bytes, self.upload_routes = upload_body_bytes, upload_routes

    def _limit(self, scope: Scope) -> int:
        for route in self.upload_routes:
            if scope["method"] in route.methods and route.path_regex.match(scope["path"]):
                return max(self.upload_body_bytes, self.max_body_bytes)
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = client = declared = None
        for name, value in scope["headers"]:  # the three it reads, not a dict of every header
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == _CLIENT_HEADER:
                client = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        request_id = request_id or uuid.uuid4().hex
        tokens = (request_id_var.set(request_id), client_var.set(parse_client(client)))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            limit = self._limit(scope)
            if declared and declared.isdigit() and int(declared) > limit:
                response = problem(413, "payload-too-large", "Payload too large", f"The body exceeds {limit} bytes.")
                return await response(scope, receive, send)

            received = 0

            async def limited_receive():
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body that never declared its length
                    raise StarletteHTTPException(413, f"The body exceeds {limit} bytes.")
                return message

            id_header = (b"x-request-id", request_id.encode("latin-1"))
            started = False

            async def send_with_id(message):
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    message.setdefault("headers", []).append(id_header)
                await send(message)

            try:
                await self.app(scope, limited_receive, send_with_id)
            except Exception as exc:
                # Answered here rather than by Starlette's last-resort handler, which re-raises and so
                # drops the keep-alive connection a client would reuse.
                if started:
                    raise
                await self._failure(exc)(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            request_id_var.reset(tokens[0])
            client_var.reset(tokens[1])

    def _failure(self, exc: Exception):
        if is_transient(exc):
            log.warning("infrastructure unavailable", error=repr(exc))
            return problem(503, "service-unavailable", "Service unavailable",
                           "A backing service is unreachable; retry shortly.",
                           headers={"Retry-After": str(self.retry_after)})
        log.error("unhandled error", exc_info=exc)
        return problem(500, "internal-error", "Internal server error", "Something went wrong on our side.")


class MetricsMiddleware(PrometheusInstrumentatorMiddleware):
    """prometheus-fastapi-instrumentator's middleware, finding a request's handler (its route template) once
    per method and path: the library matches the path against every route of the app on every request, which
    cost more than the metrics themselves. A bounded LRU: paths carrying ids come and go, the app's routes
    do not change once it serves."""

    def __init__(self, app: ASGIApp, **options):
        super().__init__(app, **options)
        self._handler = functools.lru_cache(maxsize=4096)(self._resolve_handler)

    def _resolve_handler(self, app, method: str, path: str, root_path: str) -> tuple[str, bool]:
        scope = {"type": "http", "app": app, "method": method, "path": path, "root_path": root_path, "headers": []}
        return super()._get_handler(Request(scope))

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        scope = request.scope
        return self._handler(scope.get("app"), scope["method"], scope["path"], scope.get("root_path", ""))


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: database, broker and every background job running")
    async def readyz(request: Request):
        supervisor: Supervisor = request.app.state.supervisor
        checks = {"database": await _database_ok(request.app), "broker": await _broker_ok(request.app.state.settings),
                  "background": supervisor.healthy}
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks,
                             "background": supervisor.states()}, status_code=200 if ready else 503)

    return router


async def _database_ok(app: FastAPI) -> bool:
    try:
        async with app.state.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
        return True
    except Exception:
        return False


async def _broker_ok(settings: HearthSettings) -> bool:
    first = settings.kafka_bootstrap.split(",")[0]
    parts = urlsplit(f"//{first}")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 9092), timeout=2)
        writer.close()
        return True
    except (OSError, TimeoutError):
        return False


def collect_less_often() -> None:
    """Full collections stall every request and socket of a process for tens to hundreds of ms (the tail of
    chat latency, feed pages and cold analytics answers): what is alive once started (modules, the app) is
    frozen out of them, and young collections run every 10,000 allocations instead of 700, so far fewer of a
    request's short-lived objects are promoted to the old generation, whose growth sets off a full pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


def create_service_app(*, settings: HearthSettings, title: str, description: str, routers: list[APIRouter],
                       consumers: list[EventConsumer] = (), on_startup: list[StartupHook] = (),
                       verifier: TokenVerifier | None = None) -> FastAPI:
    """Build a service: its routers plus everything every service has in common."""
    configure_logging(level=settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings.service_database_url, pool_size=settings.database_pool_size)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine, service=settings.service_name)
        # Transaction-free reads for read_only routes (shared.db); rate-limit counts run on the pool's
        # connections through asyncpg, outside any transaction (shared.ratelimit).
        app.state.read_sessionmaker = read_sessionmaker(engine, service=settings.service_name)
        for hook in on_startup:
            await hook(app)
        if settings.env != "test":  # a test process starts many apps: frozen, each one's garbage would stay
            collect_less_often()
        supervisor: Supervisor = app.state.supervisor
        if settings.run_background:
            relay = _relay(settings)
            supervisor.add("outbox-relay", relay.run, kind="relay", source=relay)
            for c in consumers:
                supervisor.add(c.name, _consumer_runner(c, settings, app.state.sessionmaker), kind="consumer",
                               source=c)
            supervisor.start()
        log.info("service started", service=settings.service_name)
        try:
            yield
        finally:
            # uvicorn has drained in-flight requests by now; the relay flushes and consumers commit.
            await supervisor.shutdown()
            supervisor.jobs.clear()
            await engine.dispose()

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.supervisor = Supervisor()
    app.state.verifier = verifier or TokenVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                                   jwks_json=settings.jwks_json, jwks_url=settings.jwks_url)
    install_error_handlers(app)
    install_guards(app, settings)  # shared/guards.py (issue 7): token guards, rate limits, /metrics access
    uploads: list = []  # filled below, once the routers are in (the middleware reads it per request)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes,
                       retry_after=settings.outage_retry_after_seconds, upload_routes=uploads,
                       upload_body_bytes=settings.attachment_max_bytes + MULTIPART_ENVELOPE_BYTES)
    registry = CollectorRegistry()
    registry.register(SupervisorCollector(app.state.supervisor, settings.service_name))
    # Requests by handler, method and status, and their latency as one histogram with the same labels: the
    # library's default set also kept request and response size summaries and a second, label-less histogram
    # of 25 buckets, each observed on every request.
    app.add_middleware(MetricsMiddleware, registry=registry, excluded_handlers=["/metrics", "/healthz", "/readyz"],
                       instrumentations=[metrics.requests(registry=registry), metrics.latency(registry=registry)])
    Instrumentator(registry=registry).expose(app, include_in_schema=False)
    app.include_router(_health_router())
    for router in routers:
        app.include_router(router)
    uploads.extend(r for r in iter_route_contexts(app.routes) if getattr(r.endpoint, "hearth_upload", False))
    install_openapi(app)
    return app


def _relay(settings: HearthSettings) -> OutboxRelay:
    dsn = settings.service_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return OutboxRelay(dsn=dsn, service=settings.service_name, producer_factory=lambda: make_producer(settings),
                       topic_map=topic_map(settings), lease_seconds=settings.relay_lease_seconds,
                       processed_retention=timedelta(days=settings.processed_events_retention_days))


def _consumer_runner(consumer: EventConsumer, settings: HearthSettings, sessionmaker):
    async def run(stop: asyncio.Event) -> None:
        await consumer.run(settings=settings, sessionmaker=sessionmaker, stop=stop)
    return run
