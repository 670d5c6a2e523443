"""Passwords and usernames (issue 15.5): common passwords, the username as password, blank
passwords, full-match usernames, NFKC + case-fold uniqueness and sign-in, and migration
0002 keeping colliding accounts apart instead of merging them."""

import logging

import pytest
import sqlalchemy as sa
from alembic.config import Config

from alembic import command
from auth.passwords import common_passwords, normalize_username
from services.db import ROOT
from tests.support import PASSWORD, Server, make_settings


@pytest.mark.parametrize(
    "username, password, code",
    [
        ("bob", "password", "common_password"),
        ("bob", "12345678", "common_password"),
        ("bob", "PassWord1", "common_password"),  # case does not make a common password rare
        ("bob", "qwertyuiop", "common_password"),
        ("bob", " " * 8, "invalid_password"),
        ("bob", "\t \n \u3000  ", "invalid_password"),
        ("carol.smith", "carol.smith", "password_is_username"),
        ("carol.smith", "Carol.Smith", "password_is_username"),
        ("carol.smith", "carol.smith carol.smith", "password_is_username"),
        ("ada", "adaadaada", "password_is_username"),
    ],
)
async def test_weak_passwords_are_refused(client, username, password, code):
    r = await client.post("/users", json={"username": username, "password": password})
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    r = await client.post("/token", data={"username": username, "password": password})
    assert r.status_code == 401  # nothing was created


async def test_a_long_uncommon_password_needs_no_composition_rules(client):
    r = await client.post("/users", json={"username": "dora", "password": "purple monkey dishwasher"})
    assert r.status_code == 201
    r = await client.post("/users", json={"username": "eve", "password": "ada lovelace 1815"})
    assert r.status_code == 201  # contains words, not only the username


@pytest.mark.parametrize("username", ["ada\n", "ada\r\n", "ada ", "\nada", "a\nda"])
async def test_usernames_must_match_in_full(client, username):
    r = await client.post("/users", json={"username": username, "password": PASSWORD})
    assert r.status_code == 422 and r.json()["code"] == "invalid_username"


async def test_names_that_normalise_alike_are_one_account(client):
    r = await client.post("/users", json={"username": "Ada", "password": PASSWORD})
    assert r.status_code == 201 and r.json()["username"] == "Ada"
    for other in ("ada", "ADA", "ａｄａ", "AdA"):  # the full-width form is NFKC-equal
        r = await client.post("/users", json={"username": other, "password": PASSWORD})
        assert r.status_code == 409 and r.json()["code"] == "username_taken", other
    for spelling in ("Ada", "ada", "ADA", "ａｄａ"):
        r = await client.post("/token", data={"username": spelling, "password": PASSWORD})
        assert r.status_code == 200, spelling
    r = await client.post("/users", json={"username": "ｂｅｎ", "password": PASSWORD})
    assert r.status_code == 201 and r.json()["username"] == "ben"  # stored in its NFKC form


def test_the_shipped_list_holds_the_usual_suspects():
    words = common_passwords()
    assert len(words) == 10_000 and {"password", "12345678", "iloveyou", "qwertyuiop"} <= words
    assert PASSWORD not in words


def _alembic(conn) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["connection"] = conn
    return cfg


async def test_migration_keeps_colliding_accounts_apart_and_reports_them(tmp_path, caplog):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{settings.data_dir / 'chat.db'}")
    from auth.security import hash_password

    pw_hash = hash_password(PASSWORD)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0001")
        for i, name in enumerate(["Ada", "ada", "bob", "ADA"]):
            conn.execute(
                sa.text("INSERT INTO users (id, username, password_hash, created_at) VALUES (:id, :u, :h, :t)"),
                {"id": f"01J{i:023d}", "u": name, "h": pw_hash, "t": f"2026-01-0{i + 1} 00:00:00"},
            )
    with caplog.at_level(logging.WARNING), engine.begin() as conn:
        command.upgrade(_alembic(conn), "head")
        rows = dict(conn.execute(sa.text("SELECT username, username_normalized FROM users")).all())
    engine.dispose()
    assert rows["Ada"] == "ada" and rows["bob"] == "bob"  # the oldest keeps the name
    assert rows["ada"] == "ada#collision-" + "01J" + "1".zfill(23)
    assert rows["ADA"] == "ada#collision-" + "01J" + "3".zfill(23)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'ada'" in warned and "'ADA'" in warned and "rename or remove" in warned

    server = await Server(settings).start()
    try:
        async with server.client() as c:
            r = await c.post("/token", data={"username": "ADA", "password": PASSWORD})
            assert r.status_code == 200  # signs in as the oldest account, Ada
            r = await c.post("/users", json={"username": "aDa", "password": PASSWORD})
            assert r.status_code == 409
            r = await c.post("/token", data={"username": "BOB", "password": PASSWORD})
            assert r.status_code == 200
    finally:
        await server.stop()
    assert normalize_username("ＡＤＡ") == "ada"
