"""Every table of the service, imported in one place for Alembic."""

from services.posts.auth.models import RefreshToken
from services.posts.content.models import Post
from services.posts.people.models import Person

__all__ = ["Person", "Post", "RefreshToken"]
