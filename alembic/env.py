"""Alembic environment. The service passes its own connection in `config.attributes`
(see services/db.py); the `alembic` command line opens one from the settings."""

import asyncio

from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from config import get_settings
from models.db import Base

target_metadata = Base.metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    engine = create_async_engine(get_settings().sqlalchemy_url)
    async with engine.begin() as conn:
        await conn.run_sync(run_with)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    asyncio.run(run_from_settings())
