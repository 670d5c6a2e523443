"""The Core tables of the ORM models, for the statements written in Core.

SQLAlchemy types a mapped class's `__table__` as a FromClause (a class may be mapped to any
selectable); every model in models/db.py is mapped to a plain Table, which is what insert,
update and delete take."""

from typing import cast

from sqlalchemy import Table

from models.db import ApiKey, ChatSession, Message, UsageRecord, User

users = cast(Table, User.__table__)
chat_sessions = cast(Table, ChatSession.__table__)
messages = cast(Table, Message.__table__)
api_keys = cast(Table, ApiKey.__table__)
usage_records = cast(Table, UsageRecord.__table__)
