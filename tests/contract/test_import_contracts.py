"""The import boundaries in pyproject.toml ([tool.importlinter]) hold for the code as it is."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = (
    "Services never import each other",
    "shared never imports a service",
    "Identity (people, auth, SCIM) never imports the social code of posts",
)


def lint_imports() -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(script), "--no-cache", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def test_services_shared_and_identity_keep_their_import_boundaries():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS:  # a contract dropped from pyproject.toml must not pass silently
        assert f"{name} KEPT" in result.stdout, f"contract {name!r} did not run:\n{result.stdout}"
