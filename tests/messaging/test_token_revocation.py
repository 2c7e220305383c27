"""messaging refuses revoked API tokens, ended sessions and deactivated people, from its people read model."""

from tests.shared.revocation_checks import check_revocations_are_refused


async def test_revoked_tokens_ended_sessions_and_deactivated_people_are_refused(client, settings, sessionmaker, keys):
    await check_revocations_are_refused(client, settings, sessionmaker, keys, path="/api/v1/conversations",
                                        scope="messages:read")
