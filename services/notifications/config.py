from typing import ClassVar

from shared.config import HearthSettings


class Settings(HearthSettings):
    service_name: ClassVar[str] = "notifications"

    # Links in emails (unsubscribe) point here; the gateway's public origin in production.
    public_base_url: str = "http://127.0.0.1:8003"
    # Signs one-click unsubscribe links (HMAC); must be a real secret in production.
    unsubscribe_secret: str = "change-me"

    # Background workers: how often each looks for due work, and how much it takes at once.
    worker_poll_seconds: float = 1.0
    worker_batch: int = 100

    # Outgoing webhooks.
    webhook_allow_private_targets: bool = False  # tests and on-premise integrations on a private network
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 8  # per delivery, with exponential backoff from webhook_retry_base_seconds
    webhook_retry_base_seconds: float = 30.0
    webhook_disable_after_failures: int = 20  # consecutive failed attempts: the webhook is switched off

    # Push providers. Endpoints are settings so tests (and proxies) can stand in for the providers.
    push_max_attempts: int = 5
    push_retry_base_seconds: float = 10.0
    push_timeout_seconds: float = 10.0
    vapid_private_key: str = ""  # base64url raw or PEM; Web Push is off while empty
    vapid_subject: str = "mailto:admin@hearth.local"
    fcm_project_id: str = ""  # FCM HTTP v1 is off while empty
    fcm_service_account_json: str = ""  # the Google service account (client_email, private_key, token_uri)
    fcm_endpoint: str = "https://fcm.googleapis.com"
    apns_key: str = ""  # the .p8 signing key (PEM); APNs is off while empty
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""  # the app's bundle id
    apns_use_sandbox: bool = False
    # "host:port" instead of Apple's (api[.development].push.apple.com:443), and extra CA certificates to trust
    # for it: a gateway in between, or the tests' stand-in.
    apns_endpoint: str = ""
    apns_ca_file: str = ""

    # Email digests.
    smtp_host: str = ""  # digests are off while empty
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "Hearth <notifications@hearth.local>"
    digest_hour: int = 8  # local hour (the person's time zone) after which a daily digest goes out
    # New messages by email: one per member and conversation per this many minutes (digests/messages.py).
    message_email_minutes: float = 15.0

    def secret_fields(self) -> dict[str, str]:
        # Only signs unsubscribe links in emails: required once email is switched on (an SMTP host is set).
        return {"unsubscribe_secret": self.unsubscribe_secret} if self.smtp_host else {}
