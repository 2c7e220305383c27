"""A Python client generated from docs/openapi.json works against the running services.

openapi-python-client turns the gateway document into typed code; the test signs in, posts, reads the
post back, lists people and gets a typed Problem for a 404 with nothing but that code — so a change
to the document that breaks generated clients fails `make test`.
"""

import importlib
import subprocess
import sys
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from tests.contract.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "project_name_override: hearth_client\npackage_name_override: hearth_client\npost_hooks: []\n"


@pytest.fixture(scope="module")
def hearth_client(tmp_path_factory):
    """The generated package, imported from a temporary folder."""
    where = tmp_path_factory.mktemp("generated")
    (where / "config.yml").write_text(CONFIG)
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [str(generator), "generate", "--path", str(ROOT / "docs" / "openapi.json"), "--meta", "none",
         "--output-path", str(where / "hearth_client"), "--config", str(where / "config.yml"), "--fail-on-warning"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"openapi-python-client could not use docs/openapi.json:\n{result.stdout}{result.stderr}"
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("hearth_client")
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == "hearth_client" or m.startswith("hearth_client.")]:
            del sys.modules[name]


def test_generated_client_signs_in_posts_reads_back_lists_people_and_gets_a_typed_404(live_stack, hearth_client):
    from hearth_client.api.auth import login
    from hearth_client.api.people import list_people
    from hearth_client.api.posts import create_post, read_post
    from hearth_client.models import (
        LoginRequest,
        PagePersonSummary,
        PostCreate,
        PostCreateKind,
        PostPublic,
        Problem,
        TokenPair,
    )

    base_url = live_stack.urls["posts"]
    tokens = login.sync(client=hearth_client.Client(base_url=base_url),
                        body=LoginRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD))
    assert isinstance(tokens, TokenPair) and tokens.access_token

    with hearth_client.AuthenticatedClient(base_url=base_url, token=tokens.access_token) as client:
        created = create_post.sync_detailed(client=client, body=PostCreate(
            kind=PostCreateKind.UPDATE, body="Hello from a generated client #contract"))
        assert created.status_code == 201, created.content
        assert isinstance(created.parsed, PostPublic)

        read = read_post.sync(client=client, post_id=created.parsed.id)
        assert isinstance(read, PostPublic)
        assert read.id == created.parsed.id and read.body == "Hello from a generated client #contract"

        people = list_people.sync(client=client, limit=100)
        assert isinstance(people, PagePersonSummary)
        assert people.items and all(isinstance(person.id, UUID) for person in people.items)
        assert people.next_cursor or live_stack.admin_id in {str(person.id) for person in people.items}

        missing = read_post.sync_detailed(client=client, post_id=uuid4())
        assert missing.status_code == 404
        assert isinstance(missing.parsed, Problem)
        assert missing.parsed.status == 404 and missing.parsed.code.endswith("not-found")
