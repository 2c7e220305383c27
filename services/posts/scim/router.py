from fastapi import APIRouter

router = APIRouter(prefix="/scim/v2", tags=["scim"])
