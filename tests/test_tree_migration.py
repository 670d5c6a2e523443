"""Migration 0003_tree: sessions stored before the tree become linear branches, shown and
prompted exactly as before."""

import httpx
import sqlalchemy as sa
from alembic.config import Config

from alembic import command
from auth.security import hash_password
from config import Settings
from fakeupstream import FakeUpstream
from services.db import ROOT
from tests.support import PASSWORD, Server

USER = "01J" + "0" * 23
SESSIONS = ("01K" + "0" * 23, "01K" + "0" * 22 + "1")


def _alembic(conn: sa.Connection) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["connection"] = conn
    return cfg


def _old_history(conn: sa.Connection) -> dict[str, list[str]]:
    """Two sessions written the old way (no parents), their turns interleaved by pk."""
    conn.execute(
        sa.text(
            "INSERT INTO users (id, username, password_hash, created_at, username_normalized) "
            "VALUES (:id, 'ada', :h, '2026-01-01 00:00:00', 'ada')"
        ),
        {"id": USER, "h": hash_password(PASSWORD)},
    )
    for sid in SESSIONS:
        conn.execute(
            sa.text(
                "INSERT INTO chat_sessions (id, user_id, title, model_name, temperature, max_tokens, "
                "top_p, fallback_models, kind, created_at, updated_at) VALUES (:id, :u, 'old', "
                "'openai/fake-model', 0.5, 64, 1.0, '[]', 'chat', '2026-01-01', '2026-01-01')"
            ),
            {"id": sid, "u": USER},
        )
    ids: dict[str, list[str]] = {sid: [] for sid in SESSIONS}
    for n in range(6):
        sid = SESSIONS[n % 2]
        role = "user" if n // 2 % 2 == 0 else "assistant"
        mid = f"01M{n:023d}"
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, session_id, role, content, status, created_at, last_seq) "
                "VALUES (:id, :s, :r, :c, 'completed', '2026-01-01', 0)"
            ),
            {"id": mid, "s": sid, "r": role, "c": f"{role} {n}"},
        )
        ids[sid].append(mid)
    return ids


async def test_linear_history_becomes_the_active_branch(upstream_settings: Settings, fake: FakeUpstream) -> None:
    upstream_settings.data_dir.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{upstream_settings.data_dir / 'chat.db'}")
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0002_sec_limits")
        ids = _old_history(conn)
        command.upgrade(_alembic(conn), "head")
        parents: dict[str, str | None] = dict(conn.execute(sa.text("SELECT id, parent_id FROM messages")).all())
        leaves: dict[str, str | None] = dict(
            conn.execute(sa.text("SELECT id, active_leaf_id FROM chat_sessions")).all()
        )
    for sid, chain in ids.items():
        assert [parents[m] for m in chain] == [None, *chain[:-1]]
        assert leaves[sid] == chain[-1]
    with engine.begin() as conn:  # and back: the columns go, the rows stay
        command.downgrade(_alembic(conn), "0002_sec_limits")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("messages")}
        assert "parent_id" not in columns
        assert conn.execute(sa.text("SELECT count(*) FROM messages")).scalar() == 6
        command.upgrade(_alembic(conn), "head")
    engine.dispose()

    server = await Server(upstream_settings).start()
    try:
        async with server.client() as c:
            token = (await c.post("/token", data={"username": "ada", "password": PASSWORD})).json()["access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            sid, chain = SESSIONS[0], ids[SESSIONS[0]]
            history = (await c.get(f"/sessions/{sid}")).json()["history"]
            assert [m["id"] for m in history] == chain
            assert all(m["versions"] == [m["id"]] for m in history)
            r = await c.post("/chat", json={"session_id": sid, "message": "new"})
            assert r.status_code == 200
            async with httpx.AsyncClient() as f:
                prompt = (await f.get(f"{fake.base_url}/_fake/stats")).json()["last_request"]["messages"]
            assert [m["content"] for m in prompt] == ["user 0", "assistant 2", "user 4", "new"]
    finally:
        await server.stop()
