from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from shared.auth import API_TOKEN_MAX_DAYS
from shared.config import HearthSettings

SCIM_TOKEN_MIN_LENGTH = 32


class Settings(HearthSettings):
    service_name: ClassVar[str] = "posts"

    admin_email: str = "admin@hearth.local"
    admin_password: str = "change-me"
    admin_name: str = "Hearth Admin"
    # PEM of the ES256 key that signs access tokens; a file (mounted secret) or the PEM itself.
    jwt_private_key_file: str = ""
    jwt_private_key: str = ""
    # Keys rotated out: still published in the JWKS so tokens they signed verify until they expire.
    # One or more PEM blocks (public keys preferred; private keys give their public part).
    jwt_previous_keys_file: str = ""
    jwt_previous_keys: str = ""
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    api_token_default_days: int = Field(default=90, ge=1, le=API_TOKEN_MAX_DAYS)
    # Failed password sign-ins tolerated per account (and per client address) within the window.
    login_max_failures: int = 5
    login_ip_max_failures: int = 50
    login_failure_window_minutes: int = 30
    # Bearer tokens for /scim/v2: the current one and, while an identity provider is being moved to a
    # new one, the next (both are accepted). In prod each must be a long random string.
    scim_token: str = "change-me"
    scim_token_next: str = ""
    # Failed SCIM sign-ins tolerated per client address ("<failures>/<seconds>"), then 429.
    scim_auth_failures: str = "10/600"
    # OpenID Connect SSO; off unless an issuer is set.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_uri: str = ""
    oidc_scopes: str = "openid email profile"
    oidc_login_ttl_seconds: int = 600
    # Uploads no post has used after this long are deleted (attachments.service.orphan_sweeper).
    attachment_orphan_hours: int = Field(default=24, ge=1)

    @property
    def previous_keys_pem(self) -> bytes:
        from_file = Path(self.jwt_previous_keys_file).read_bytes() if self.jwt_previous_keys_file else b""
        return self.jwt_previous_keys.encode() + b"\n" + from_file

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def scim_tokens(self) -> list[str]:
        return [t for t in (self.scim_token, self.scim_token_next) if t]

    @model_validator(mode="after")
    def _scim_tokens_are_long_in_prod(self):
        if self.env == "prod" and any(len(t) < SCIM_TOKEN_MIN_LENGTH for t in self.scim_tokens):
            raise ValueError(f"HEARTH_SCIM_TOKEN(_NEXT) must be random strings of at least {SCIM_TOKEN_MIN_LENGTH} "
                             "characters when HEARTH_ENV=prod (e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'`)")
        return self

    def secret_fields(self) -> dict[str, str]:
        has_key = bool(self.jwt_private_key or self.jwt_private_key_file)
        fields = {"HEARTH_ADMIN_PASSWORD": self.admin_password, "HEARTH_SCIM_TOKEN": self.scim_token,
                  "HEARTH_JWT_PRIVATE_KEY(_FILE)": "set" if has_key else ""}
        if self.oidc_enabled:
            fields["HEARTH_OIDC_CLIENT_SECRET"] = self.oidc_client_secret
        return fields
