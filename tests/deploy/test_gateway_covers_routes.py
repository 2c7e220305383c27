"""Every route the services actually serve is reachable through the gateway, at the right service."""

import importlib

import pytest

from tests.deploy.test_deploy_static import NGINX_CONF, SERVICES, Gateway

PER_SERVICE = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def served_paths(service: str) -> list[str]:
    app = importlib.import_module(f"services.{service}.main").create_app()
    return sorted(path for path in app.openapi()["paths"] if path not in PER_SERVICE)


@pytest.mark.parametrize("service", SERVICES)
def test_every_public_route_is_routed_to_its_service(service):
    gateway = Gateway(NGINX_CONF.read_text())
    for path in served_paths(service):
        probe = path.replace("{", "x").replace("}", "x")  # a concrete path for templated segments
        location = gateway.match(probe)
        assert location is not None and gateway.service_of(location) == service, f"{path} is not routed to {service}"
