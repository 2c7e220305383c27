"""Every kind of notification and its default channels; a person's rows in notification_preferences override them."""

from typing import Literal, NamedTuple


class Channels(NamedTuple):
    in_app: bool
    push: bool
    email: bool  # included in the email digest


DEFAULTS: dict[str, Channels] = {
    "mention": Channels(True, True, True),
    "comment": Channels(True, True, True),
    "reply": Channels(True, True, True),
    "reaction": Channels(True, False, False),
    "comment_reaction": Channels(True, False, False),  # like reactions on posts: in the inbox, no push, no email
    "follow": Channels(True, False, True),
    "follow_request": Channels(True, True, True),
    "follow_approved": Channels(True, True, False),
    "group_invite": Channels(True, True, True),
    "join_request": Channels(True, True, True),
    "join_approved": Channels(True, True, False),
    "announcement": Channels(True, True, True),  # must-read: past mutes, with reminders
    "plain_announcement": Channels(True, False, True),  # to a whole audience: no buzz on 10,000 phones by default
    "announcement_reminder": Channels(True, True, True),
    "praise": Channels(True, True, True),
    "best_answer": Channels(True, True, True),
    "message": Channels(False, True, True),  # new message while no socket is open: push and email only
}
Kind = Literal["mention", "comment", "reply", "reaction", "comment_reaction", "follow", "follow_request",
               "follow_approved", "group_invite", "join_request", "join_approved", "announcement", "plain_announcement",
               "announcement_reminder", "praise", "best_answer", "message"]
CHANNELS = ("in_app", "push", "email")
