"""Which group each test file belongs to; tests/conftest.py marks every test with exactly one.

- unit: no server (in-process or child), no fake upstream, no broker, no browser: `pytest -m unit`
  runs on a bare checkout with only .venv;
- integration: starts the service (uvicorn in the test's loop or `python -m serve`) or the fake
  upstream, embedded mode only;
- scaleout: needs PostgreSQL, Redis or RabbitMQ (started by scripts/test.sh);
- browser: drives Debian's chromium.

A file's tests take its group here. A test or a fixture parameter marked with another group's
marker (`@pytest.mark.scaleout`, `pytest.param("redis", marks=pytest.mark.scaleout)`) takes that
one instead: files whose tests run on both backends mark only the cases that need a broker.
A new test file must be added here (collection fails until it is).
"""

UNIT, INTEGRATION, SCALEOUT, BROWSER = "unit", "integration", "scaleout", "browser"
GROUPS = (UNIT, INTEGRATION, SCALEOUT, BROWSER)

# Fixtures that start a server: a test using one of them cannot be a unit test.
SERVER_FIXTURES = frozenset({"server", "client", "token", "auth", "fake_upstream", "fake", "upstream", "up"})

FILES = {
    UNIT: [
        "test_db_reconnect.py",  # the PostgreSQL cases are marked scaleout
        "test_import_side_effects.py",
        "test_layers.py",
        "test_loop_detector.py",
        "test_memory_log.py",
        "test_push_relay.py",
        "test_resume_property.py",
        "test_run_script.py",  # scripts/run.sh against stub python and pip
        "test_serial_thread.py",
        "test_store_contract.py",  # the PostgreSQL cases are marked scaleout
        "test_store_sqlite.py",
        "test_stream_log_capabilities.py",  # the Redis log's cases are marked scaleout
        "test_stream_log_contract.py",  # the Redis log's cases are marked scaleout
    ],
    INTEGRATION: [
        "test_anthropic.py",
        "test_api_key_transports.py",
        "test_api_keys.py",
        "test_auth.py",
        "test_bench_smoke.py",  # the quick benchmark leaves the scale-out run out
        "test_cancel_and_guards.py",
        "test_capacity.py",
        "test_chat.py",
        "test_coalescing.py",
        "test_datadir_lock.py",
        "test_dispatch_contract.py",  # the RabbitMQ harness's cases are marked scaleout
        "test_fake_model_names.py",
        "test_fake_upstream.py",
        "test_fast_start.py",  # the PostgreSQL cases are marked scaleout
        "test_json_logs.py",
        "test_lifecycle.py",
        "test_login_limiter.py",
        "test_offline_reply.py",
        "test_openai_node.py",
        "test_openai_readme.py",
        "test_openai_sdk.py",
        "test_openai_sdk_responses.py",
        "test_openai_stream_parsing.py",  # a raw upstream under uvicorn
        "test_ops_probes_metrics.py",  # the broker-outage case is marked scaleout
        "test_password_policy.py",
        "test_provider_registry.py",
        "test_providers.py",
        "test_reference_clients.py",
        "test_refresh_tokens.py",
        "test_resume.py",
        "test_search.py",  # the PostgreSQL case is marked scaleout
        "test_sessions.py",
        "test_socket_auth.py",
        "test_titles.py",
        "test_tracing.py",
        "test_tree.py",
        "test_tree_migration.py",
        "test_usage_admin.py",
        "test_user_limits.py",
        "test_v1_admission.py",
        "test_ws.py",
        "security/test_access_log.py",
        "security/test_contract.py",
        "security/test_http_hygiene.py",
        "security/test_input_bounds.py",
        "security/test_request_heads.py",
        "security/test_schemathesis.py",
        "security/test_ws_frames.py",
    ],
    SCALEOUT: [
        "test_broker_restart.py",
        "test_openai_scaleout.py",
        "test_scaleout_cluster.py",
        "test_tracing_scaleout.py",
        "test_tree_postgres.py",
        "test_user_limits_scaleout.py",
        "test_worker_builds.py",
        "test_worker_kill.py",
    ],
    BROWSER: [
        "test_ui_apikeys.py",
        "test_ui_browser.py",
        "test_ui_features.py",
        "test_ui_perf.py",
        "test_ui_search.py",
        "test_ui_session.py",
        "test_ui_tree.py",
    ],
}

GROUP_OF = {path: group for group, paths in FILES.items() for path in paths}
