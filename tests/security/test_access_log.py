"""Query strings (which may carry a token) never reach the request logs: the real access
log of a real server process, and the log records any other formatter would read."""

import logging

import websockets

from tests.support import Server, ServerProcess, make_settings

SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"


async def _requests_with_secrets(base: str, ws_base: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base) as c:
        assert (await c.get(f"/sessions?token={SECRET}")).status_code == 401
        assert (await c.get(f"/health?token={SECRET}&x=1")).status_code == 200
    try:
        async with websockets.connect(f"{ws_base}/ws?token={SECRET}") as conn:
            await conn.recv()
    except websockets.ConnectionClosed:
        pass


async def test_access_log_of_a_server_process_has_no_query(tmp_path):
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        proc = await ServerProcess({"DATA_DIR": tmp_path / "data"}, log_level="info", log_file=log_file).start()
        try:
            await _requests_with_secrets(proc.base, proc.ws_base)
        finally:
            await proc.stop()
    log = log_path.read_text()
    assert '"GET /sessions HTTP/1.1" 401' in log, log  # the access log is on, and logs the path
    assert "/ws" in log
    assert SECRET not in log and "token=" not in log


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


async def test_log_records_have_no_query_for_any_format(tmp_path):
    server = Server(make_settings(tmp_path), log_level="info")
    handler = _Records()
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(handler)
    try:
        await server.start()
        await _requests_with_secrets(server.base, server.ws_base)
    finally:
        await server.stop()
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(handler)
    access = [r for r in handler.records if r.name == "uvicorn.access"]
    assert len(access) >= 2
    for record in handler.records:
        assert SECRET not in record.getMessage() and SECRET not in repr(record.args)
