"""What every service's OpenAPI document has in common (documented errors, operation ids, examples)."""

from fastapi import FastAPI


def install_openapi(app: FastAPI) -> None:
    """Hook the shared OpenAPI customisation into a service app (called by create_service_app)."""
