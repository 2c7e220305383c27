"""Every table of the service, imported in one place for Alembic."""

from services.analytics.ingest.models import (Comment, EventLog, Group, GroupMember, GroupPersonDay, Person, PersonBits,
                                              PersonClientDay, PersonDay, Post, PostAck, PostDay, PostResponder,
                                              PostViewer, SearchDay)

__all__ = ["Comment", "EventLog", "Group", "GroupMember", "GroupPersonDay", "Person", "PersonBits", "PersonClientDay",
           "PersonDay", "Post", "PostAck", "PostDay", "PostResponder", "PostViewer", "SearchDay"]
