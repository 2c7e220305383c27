from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from services.posts.db import SessionDep
from services.posts.people import service
from services.posts.people.models import Person
from services.posts.people.schemas import (
    SKILL_MAX_LENGTH,
    AdminFields,
    OrgChart,
    PersonCreate,
    PersonPublic,
    PersonSummary,
    ProfileFields,
)
from shared.auth import CurrentUser, CurrentUserDep, require_roles
from shared.pagination import Page, PageDep
from shared.types import SafeText

router = APIRouter(prefix="/api/v1/people", tags=["people"])


@router.get("/me", response_model=PersonPublic)
async def read_me(session: SessionDep, user: CurrentUserDep):
    """The signed-in person."""
    return await service.get_or_raise(session, person_id=user.id)


@router.patch("/me", response_model=PersonPublic)
async def update_me(data: ProfileFields, session: SessionDep, user: CurrentUserDep):
    """Edit your own profile. Turning `protected` off approves pending follow requests."""
    person = await service.get_or_raise(session, person_id=user.id)
    return await service.update(session, person=person, changes=data, actor=user.id)


@router.get("", response_model=Page[PersonSummary])
async def list_people(session: SessionDep, user: CurrentUserDep, page: PageDep,
                      department: Annotated[SafeText(Person.department) | None, Query()] = None,
                      location: Annotated[SafeText(Person.location) | None, Query()] = None,
                      skill: Annotated[SafeText(SKILL_MAX_LENGTH) | None, Query()] = None,
                      q: Annotated[SafeText(100) | None, Query()] = None):
    """The directory, alphabetical; filter by department, location, skill or a name fragment."""
    items, next_cursor = await service.get_all(session, page=page, department=department, location=location,
                                               skill=skill, q=q)
    return Page(items=items, next_cursor=next_cursor)


@router.post("", response_model=PersonPublic, status_code=status.HTTP_201_CREATED)
async def create_person(data: PersonCreate, session: SessionDep, user: CurrentUser = require_roles("admin")):
    """Create a person (admins; SCIM provisioning is the usual path)."""
    return await service.create(session, data=data, actor=user.id)


@router.get("/{person_id}", response_model=PersonPublic)
async def read_person(person_id: UUID, session: SessionDep, user: CurrentUserDep):
    """A person's profile."""
    return await service.get_or_raise(session, person_id=person_id)


@router.patch("/{person_id}", response_model=PersonPublic)
async def update_person(person_id: UUID, data: AdminFields, session: SessionDep,
                        user: CurrentUser = require_roles("admin")):
    """Edit anyone's profile, including department, manager and roles (admins)."""
    person = await service.get_or_raise(session, person_id=person_id)
    return await service.update(session, person=person, changes=data, actor=user.id)


@router.get("/{person_id}/org-chart", response_model=OrgChart)
async def read_org_chart(person_id: UUID, session: SessionDep, user: CurrentUserDep):
    """A person's management chain and direct reports."""
    person = await service.get_or_raise(session, person_id=person_id)
    return OrgChart(person=person, managers=await service.management_chain(session, person=person),
                    reports=await service.direct_reports(session, person=person))
