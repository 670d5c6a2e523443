"""A generation's stored row as the transports show it: its frames rebuilt for a reader that
resumes after the log expired, and its view for GET /generations/{id}."""

from services.generations.store_types import GenerationRow
from services.json_types import JSONObject
from services.streaming import frames
from services.streaming.frames import Frame


def stored_frames(row: GenerationRow, after: int) -> list[Frame]:
    """A finished generation's remaining frames, rebuilt from its stored row."""
    done_seq = row.last_seq
    out: list[Frame] = []
    if after >= done_seq:
        return out
    if after < done_seq - 1:
        out.append(frames.snapshot(row.id, done_seq - 1, row.content, row.status))
    out.append(frames.done(row.id, done_seq, row.status, row.finish_reason or "error", row.usage, row.error, row.model))
    return out


def generation_view(row: GenerationRow) -> JSONObject:
    return {
        "id": row.id,
        "session_id": row.session_id,
        "status": row.status,
        "finish_reason": row.finish_reason,
        "content": row.content,
        "last_seq": row.last_seq,
        "usage": row.usage,
        "model": row.model,
        "error": row.error,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }
