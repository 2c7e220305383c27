"""Settings common to every service; each service subclasses `HearthSettings` with its own fields."""

from typing import ClassVar, Literal

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.context import parse_networks
from shared.db import database_url

# Values that are fine on a laptop and must never reach production.
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "admin", "password", "secret", "hearth"}


class HearthSettings(BaseSettings):
    """Environment-driven settings (`HEARTH_*`); one instance per app, never read at import."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_", extra="ignore")

    service_name: ClassVar[str] = "hearth"

    env: Literal["dev", "test", "prod"] = "dev"
    # A server URL; the service's own database name replaces its path (one database per service).
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_prefix: str = "hearth_"
    database_pool_size: int = 10
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Tansu (the development broker) fails aiokafka's idempotent producer; Apache Kafka supports it.
    kafka_idempotence: bool = False
    topic_people: str = "people.v1"
    topic_social: str = "social.v1"
    topic_activity: str = "activity.v1"
    topic_messaging: str = "messaging.v1"
    topic_notifications: str = "notifications.v1"
    consumer_max_attempts: int = 5
    # Tansu answers a waiting fetch only when the wait ends (Apache Kafka answers when data arrives),
    # so the dev stack lowers this to keep the event path in milliseconds; see bench/event_path.py.
    kafka_fetch_max_wait_ms: int = 500
    # Where services other than posts fetch the token signing keys; or the JWKS document itself.
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwks_json: str = ""
    jwt_issuer: str = "hearth"
    jwt_audience: str = "hearth"
    max_body_bytes: int = 1_048_576
    # Uploaded files (shared/storage.py): a folder (file:///path or a path) or s3://bucket/prefix?endpoint_url=…
    storage_url: str = ".hearth/uploads"
    # Largest attachment: upload routes (shared.uploads.upload_route) take bodies this large (plus the
    # multipart envelope); every other route stays within max_body_bytes.
    attachment_max_bytes: int = 10_485_760
    # Proxies (the gateway) whose X-Forwarded-For is believed: comma-separated addresses or CIDRs.
    # Empty: the direct peer is the client, whatever headers it sends.
    trusted_proxies: str = ""
    # Rate limits (shared/ratelimit.py), each "<requests>/<seconds>": per person (or API token) on
    # every route, per client address for callers without a token, and stricter ones per route.
    # Off when HEARTH_ENV=test unless this says otherwise (tests make many requests as one person).
    rate_limits_enabled: bool | None = None
    rate_limit_person: str = "200/60"
    rate_limit_address: str = "300/60"
    rate_limit_login: str = "30/60"
    rate_limit_scim: str = "300/60"
    rate_limit_token_create: str = "10/3600"
    rate_limit_follow: str = "100/3600"
    rate_limit_post: str = "30/60"
    # /metrics is for the internal network; when set, it also wants `Authorization: Bearer <token>`.
    metrics_token: str = ""
    log_json: bool = True
    log_level: str = "INFO"
    run_background: bool = True  # relay and consumers; tests of a single app switch it off
    # A frozen relay loses its lease (and a standby takes over) after this long.
    relay_lease_seconds: float = 5.0
    # Dedupe rows older than this are purged: a replay older than the horizon would apply twice.
    processed_events_retention_days: int = 14
    # What a client is told to wait when the database is unreachable (503 Retry-After).
    outage_retry_after_seconds: int = 5

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value)  # a typo must stop the service, not silently trust nobody (or everybody)
        return value

    @property
    def rate_limits_on(self) -> bool:
        return self.env != "test" if self.rate_limits_enabled is None else self.rate_limits_enabled

    @property
    def database_name(self) -> str:
        return f"{self.database_prefix}{self.service_name}"

    @property
    def service_database_url(self) -> str:
        return database_url(self.database_url, self.database_name)

    def secret_fields(self) -> dict[str, str]:
        """Secrets that must not keep a placeholder value in production; services extend it."""
        return {}

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self):
        if self.env == "prod":
            weak = [name for name, value in self.secret_fields().items() if value.strip().lower() in PLACEHOLDER_SECRETS]
            if weak:
                raise ValueError(f"placeholder secrets are not allowed when HEARTH_ENV=prod: {', '.join(weak)}")
        return self

    @property
    def topics(self) -> list[str]:
        return [self.topic_people, self.topic_social, self.topic_activity, self.topic_messaging, self.topic_notifications]
