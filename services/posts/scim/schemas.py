"""The SCIM resource models (from scim2-models), the tolerances identity providers need, and discovery."""

from typing import Annotated, Any

import scim2_models as scim
from pydantic import Field, field_validator
from scim2_models import (AuthenticationScheme, Bulk, ChangePassword, ETag, Filter, Group, Patch, ResourceType,
                          ScimPolicy, ScimProvider, ServiceProviderConfig, Sort, User)
from scim2_models.reference import Reference

MAX_RESULTS = 200


class Manager(scim.Manager):
    # RFC 7643 §4.3 words `$ref` as required, but its own schema (§8.7.2) does not, and Okta and Entra
    # send only `value` (Entra even a bare string): Hearth fills `$ref` in on the way out.
    ref: Annotated[Reference["User"] | None, scim.Required.false] = Field(  # type: ignore[type-arg]
        None, serialization_alias="$ref", validation_alias="$ref")


class EnterpriseUser(scim.EnterpriseUser):
    manager: Manager | None = None

    @field_validator("manager", mode="before")
    @classmethod
    def _bare_manager_id(cls, value: Any) -> Any:
        # Entra: {"op": "Add", "path": "…:manager", "value": "<id>"}.
        return {"value": value} if isinstance(value, str) else value


class Member(scim.GroupMember):
    # RFC 7643 §2.4: `display` of a multi-valued attribute is read-only; Hearth keeps none (a client
    # reads the User for its name), so it is never written and never returned.
    display: Annotated[str | None, scim.Mutability.read_only] = None


class ScimGroup(Group):
    members: Annotated[list[Member] | None, scim.Mutability.read_write] = None


ScimUser = User[EnterpriseUser]

# Okta and Entra depart from the RFC in known ways; these are the documented switches for them:
# unknown (custom) attributes are dropped, Entra's `remove` with a value selects what to remove, and a
# path filter that matches nothing (`addresses[type eq "work"].locality`) creates the entry.
POLICY = ScimPolicy(unknown=ScimPolicy.Unknown.ignore, remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)

CONFIG = ServiceProviderConfig(
    documentation_uri="https://hearth.dev/docs/scim",
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=True),
    sort=Sort(supported=False),
    etag=ETag(supported=True),
    authentication_schemes=[AuthenticationScheme(
        type="oauthbearertoken", name="Bearer token", primary=True,
        description="The SCIM token configured as HEARTH_SCIM_TOKEN, sent as `Authorization: Bearer <token>`.")],
)

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, ScimGroup],
    resource_types=[ResourceType.from_resource(ScimUser), ResourceType.from_resource(ScimGroup)],
    config=CONFIG, policy=POLICY)
