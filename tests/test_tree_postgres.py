"""The tree's REST and socket tests again on PostgreSQL: the Core statements (store_sql.py and
store_tree.py, with the session row locked) instead of SQLite's cursor ones."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from fakeupstream import FakeUpstream
from tests.scaleout_support import Namespace
from tests.support import make_settings
from tests.test_tree import (  # noqa: F401 (collected here too, with this module's fixtures)
    test_continue_extends_an_answer_cut_short,
    test_edit_branches_from_the_message_and_keeps_the_old_branch,
    test_regenerate_keeps_both_answers_and_the_model_sees_one,
    test_socket_frames_regenerate_edit_continue_and_switch,
)


@pytest.fixture
def namespace() -> Iterator[Namespace]:  # a database per test: each registers its own users
    ns = Namespace("tree").setup()
    yield ns
    ns.teardown()


@pytest.fixture
def upstream_settings(tmp_path: Path, fake: FakeUpstream, namespace: Namespace) -> Settings:
    return make_settings(
        tmp_path,
        database_url=namespace.database_url,
        openai_base_url=fake.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        provider_retry_backoff=0.05,
    )
