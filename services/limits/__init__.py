"""Sign-in limiter and per-user resource limits (see service.py)."""

from services.limits.service import Limits, StreamLease

__all__ = ["Limits", "StreamLease"]
