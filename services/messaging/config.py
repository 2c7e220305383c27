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

    @property
    def realtime(self) -> RealtimeSettings:
        from datetime import timedelta
        return RealtimeSettings(max_frame_bytes=self.messaging_ws_max_frame_bytes,
                                send_queue=self.messaging_ws_send_queue, idle_timeout=self.messaging_ws_idle_seconds,
                                window=timedelta(minutes=self.messaging_resume_window_minutes),
                                keep_frames=self.messaging_resume_keep_frames)
