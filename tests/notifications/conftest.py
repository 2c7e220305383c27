import email
from email import policy

import pytest
from aiosmtpd.controller import Controller

from services.notifications.config import Settings
from services.notifications.main import create_app
from shared.devstack.ports import free_port
from tests.service_fixtures import service_fixtures

# Local stand-ins (webhook receivers, push providers) listen on loopback, which production refuses.
settings, engine, sessionmaker, session, app, client = service_fixtures(
    "notifications", Settings, create_app, webhook_allow_private_targets=True, webhook_retry_base_seconds=0,
    webhook_max_attempts=3, webhook_disable_after_failures=4, push_retry_base_seconds=0, push_max_attempts=2,
    unsubscribe_secret="digest-test-secret", public_base_url="https://hearth.example")


class MailInbox:
    """What a real SMTP server (aiosmtpd) received."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = MailInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()
