"""The web UI: a static single page that uses only the public API."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    page = STATIC_DIR / "index.html"
    if page.exists():
        return FileResponse(page, headers={"Cache-Control": "no-cache"})
    return HTMLResponse("<h1>LLM chat service</h1><p>The web UI is not installed; see /docs.</p>")
