"""What the social code of posts (graph, groups, content, feeds, search) may use of identity — only this.

Identity (people, auth, SCIM) is kept separable so that it can become a service of its own: the social
code reads people through this module alone (an import contract in pyproject.toml checks it), so moving
identity out means providing these names over a people read model, not rewriting the social code.
`Person` is here for reading (joins, filters, search columns); people are changed only by identity.
"""

from services.posts.people.models import Person
from services.posts.people.schemas import PersonSummary
from services.posts.people.service import (
    activity,
    by_ids,
    get_active_or_raise,
    get_or_raise,
    on_protection_lifted,
    resolve_handles,
)

__all__ = ["Person", "PersonSummary", "activity", "by_ids", "get_active_or_raise", "get_or_raise",
           "on_protection_lifted", "resolve_handles"]
