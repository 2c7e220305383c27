from typing import ClassVar, Literal

from shared.config import HearthSettings
from shared.realtime import RealtimeSettings


class Settings(HearthSettings):
    service_name: ClassVar[str] = "messaging"

    # Organisation policy for read receipts; they show only in conversations of at most 20 members.
    messaging_receipts_policy: Literal["everyone", "user_choice", "off"] = "everyone"
    messaging_ws_max_frame_bytes: int = 65_536
    messaging_ws_send_queue: int = 256
    messaging_ws_idle_seconds: float = 60.0
    messaging_resume_window_minutes: int = 15
    messaging_resume_keep_frames: int = 1000
    # Fetch waits of messaging's own readers when they should differ from HEARTH_KAFKA_FETCH_MAX_WAIT_MS
    # (None). On Apache Kafka leave them: a waiting fetch is answered as soon as a record comes. Tansu
    # answers only when the wait ends, so there the fan-out reader's wait is the chat's latency floor
    # (a record waits up to one wait) and every wait is a poll of CPU when idle; the directory (people,
    # revocations) can wait longer, which pays for the fan-out's shorter one. bench/messaging.py: 10 / 100.
    messaging_fanout_fetch_max_wait_ms: int | None = None
    messaging_directory_fetch_max_wait_ms: int | None = None

    @property
    def realtime(self) -> RealtimeSettings:
        from datetime import timedelta
        return RealtimeSettings(max_frame_bytes=self.messaging_ws_max_frame_bytes,
                                send_queue=self.messaging_ws_send_queue, idle_timeout=self.messaging_ws_idle_seconds,
                                window=timedelta(minutes=self.messaging_resume_window_minutes),
                                keep_frames=self.messaging_resume_keep_frames)
