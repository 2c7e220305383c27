"""Every table of the service, imported in one place for Alembic: each domain's models module."""

import importlib
import pkgutil
from pathlib import Path

for _domain in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if _domain.ispkg and (Path(__file__).parent / _domain.name / "models.py").exists():
        importlib.import_module(f"services.posts.{_domain.name}.models")
