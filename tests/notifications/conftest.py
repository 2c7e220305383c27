from services.notifications.config import Settings
from services.notifications.main import create_app
from tests.service_fixtures import service_fixtures

# Local stand-ins (webhook receivers, push providers) listen on loopback, which production refuses.
settings, engine, sessionmaker, session, app, client = service_fixtures(
    "notifications", Settings, create_app, webhook_allow_private_targets=True, webhook_retry_base_seconds=0,
    webhook_max_attempts=3, webhook_disable_after_failures=4, push_retry_base_seconds=0, push_max_attempts=2,
    unsubscribe_secret="digest-test-secret", public_base_url="https://hearth.example")
