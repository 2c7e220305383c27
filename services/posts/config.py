from typing import ClassVar

from shared.config import HearthSettings


class Settings(HearthSettings):
    service_name: ClassVar[str] = "posts"

    admin_email: str = "admin@hearth.local"
    admin_password: str = "change-me"
    admin_name: str = "Hearth Admin"
    # PEM of the ES256 key that signs access tokens; a file (mounted secret) or the PEM itself.
    jwt_private_key_file: str = ""
    jwt_private_key: str = ""
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    scim_token: str = "change-me"

    def secret_fields(self) -> dict[str, str]:
        has_key = bool(self.jwt_private_key or self.jwt_private_key_file)
        return {"HEARTH_ADMIN_PASSWORD": self.admin_password, "HEARTH_SCIM_TOKEN": self.scim_token,
                "HEARTH_JWT_PRIVATE_KEY(_FILE)": "set" if has_key else ""}
