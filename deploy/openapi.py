"""Print the gateway's OpenAPI document: every service's public paths behind one server URL.

`make openapi` writes it to docs/openapi.json; tests/contract/test_openapi_document.py fails when that
file is stale. Run from the repository root: `.venv/bin/python deploy/openapi.py > docs/openapi.json`.
"""

import importlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.openapi import merge_documents

SERVICES = ("posts", "messaging", "notifications", "analytics")
SERVER_URL = "http://localhost:8000"


def gateway_document() -> dict:
    # A throwaway signing key and quiet logs: building the apps must not depend on the environment.
    os.environ.setdefault("HEARTH_LOG_LEVEL", "WARNING")
    docs = {name: importlib.import_module(f"services.{name}.main").create_app().openapi() for name in SERVICES}
    return merge_documents(
        docs, server_url=SERVER_URL, title="Hearth API", version="0.1.0",
        description="Everything behind the Hearth gateway: sign-in, people, SCIM, follows, groups, posts, "
                    "messaging, notifications and analytics. Every error is `application/problem+json` "
                    "(SCIM routes: `application/scim+json`). Lists are `{items, next_cursor}`.")


def render() -> str:
    return json.dumps(gateway_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
