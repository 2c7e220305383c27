from services.notifications.config import Settings
from services.notifications.inbox import service
from shared.kafka import EventConsumer


def social_consumer(settings: Settings) -> EventConsumer:
    return EventConsumer(name="notifications.social", topics=[settings.topic_social],
                         handlers={"hearth.post.created": service.record_mentions,
                                   "hearth.follow.created": service.record_follow,
                                   "hearth.follow.requested": service.record_follow_request,
                                   "hearth.group.invited": service.record_group_invite},
                         max_attempts=settings.consumer_max_attempts)
