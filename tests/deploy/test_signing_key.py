"""The signing key docker-compose.yml tells operators to create is one posts can load and sign with."""

import re
import subprocess
from datetime import timedelta
from uuid import uuid4

import jwt
import pytest

from services.posts.auth.service import load_signing_key
from services.posts.config import Settings
from tests.deploy.test_deploy_static import COMPOSE_FILE


def documented_key_command() -> str:
    """The shell command the compose file's header gives for HEARTH_JWT_PRIVATE_KEY_PATH."""
    commands = re.findall(r"`(openssl [^`]+)`", COMPOSE_FILE.read_text())
    assert len(commands) == 1, f"docker-compose.yml should give exactly one openssl command, found {commands}"
    return commands[0]


def test_key_made_as_compose_documents_signs_tokens_that_verify(tmp_path):
    command = documented_key_command()
    assert command.rstrip().endswith("-out jwt.pem"), command
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, capture_output=True)

    key = load_signing_key(Settings(jwt_private_key_file=str(tmp_path / "jwt.pem")))
    token = key.sign(subject=uuid4(), roles=["member"], scopes=None, ttl=timedelta(minutes=1),
                     issuer="hearth", audience="hearth")
    public = jwt.PyJWK(key.public_jwk()).key
    assert key.public_jwk()["crv"] == "P-256"
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="hearth", issuer="hearth")
    assert claims["roles"] == ["member"]


def test_an_rsa_key_is_refused_so_the_documented_command_matters(tmp_path):
    subprocess.run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem", shell=True,
                   cwd=tmp_path, check=True, capture_output=True)
    with pytest.raises(jwt.exceptions.InvalidKeyError):
        load_signing_key(Settings(jwt_private_key_file=str(tmp_path / "rsa.pem")))
