from uuid import UUID

from fastapi import APIRouter, status

from services.posts.db import SessionDep
from services.posts.people import service
from services.posts.people.schemas import PersonCreate, PersonPublic
from shared.auth import CurrentUser, CurrentUserDep, require_roles

router = APIRouter(prefix="/api/v1/people", tags=["people"])


@router.get("/me", response_model=PersonPublic)
async def read_me(session: SessionDep, user: CurrentUserDep):
    """The signed-in person."""
    return await service.get_or_raise(session, person_id=user.id)


@router.post("", response_model=PersonPublic, status_code=status.HTTP_201_CREATED)
async def create_person(data: PersonCreate, session: SessionDep, user: CurrentUser = require_roles("admin")):
    """Create a person (admins; SCIM provisioning is the usual path)."""
    return await service.create(session, data=data, actor=user.id)


@router.get("/{person_id}", response_model=PersonPublic)
async def read_person(person_id: UUID, session: SessionDep, user: CurrentUserDep):
    """A person's profile."""
    return await service.get_or_raise(session, person_id=person_id)
