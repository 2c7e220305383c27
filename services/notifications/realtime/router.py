"""The notification socket `/api/v1/notifications/ws` (protocol: shared/realtime.py)."""

from fastapi import APIRouter, WebSocket

from shared.realtime import Connection, FrameError, serve

router = APIRouter(tags=["realtime"])


@router.websocket("/api/v1/notifications/ws")
async def notifications_socket(websocket: WebSocket):
    """New notifications and badge counts (stored, resumable), "new posts" hints (ephemeral)."""
    await serve(websocket, hub=websocket.app.state.hub, handler=handle_frame)


async def handle_frame(conn: Connection, frame: dict) -> dict | None:
    # Reading and deleting go through REST; the socket only listens (besides the shared ping).
    raise FrameError(f"Unknown frame type {frame['type']!r}; this socket accepts only ping.")
