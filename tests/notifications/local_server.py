"""A local HTTP server standing in for webhook receivers and push providers: records requests, answers as told."""

import json
import ssl
import tempfile
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from shared.devstack.ports import free_port


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class LocalServer:
    statuses: list[int] = field(default_factory=list)  # answered in turn; 200 once they run out
    replies: dict = field(default_factory=dict)  # path -> (status, json body), fixed
    received: list[Received] = field(default_factory=list)
    tls_name: str | None = None  # serve https with a certificate for this name (its PEM is `ca_pem`)
    server_names: list[str | None] = field(default_factory=list)  # SNI of each TLS handshake

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, CIMultiDict(request.headers), await request.read()))
        if request.path in self.replies:
            status, body = self.replies[request.path]
            return web.json_response(body, status=status)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def __aenter__(self):
        self.port = free_port()
        self.runner = web.AppRunner(self._app())
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self._tls()).start()
        self.url = f"{'https' if self.tls_name else 'http'}://127.0.0.1:{self.port}"
        return self

    def _tls(self) -> ssl.SSLContext | None:
        if self.tls_name is None:
            return None
        from tests.notifications.apns_standin import self_signed
        cert, key = self_signed(self.tls_name)
        self.ca_pem = cert.decode()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.NamedTemporaryFile() as c, tempfile.NamedTemporaryFile() as k:
            c.write(cert), k.write(key)
            c.flush(), k.flush()
            context.load_cert_chain(c.name, k.name)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
        return context

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def __aexit__(self, *exc):
        await self.runner.cleanup()
