"""Fake LLM upstream: a real HTTP server speaking OpenAI chat-completions and Anthropic Messages, with the
behaviour (speed, stalls, loops, errors) chosen per request. For tests, benchmarks and working without an API key.

Behaviour options (all optional; comma-separated ``key=value`` in the model name, values percent-decoded):
    tps=50          tokens per second (0 or absent: as fast as possible)
    ttft=0.2        seconds before the first token (default 0)
    n=20            tokens to emit (default 20); token i is "t{i} ", so n=3 gives "t0 t1 t2 "
    text=Hi%2C you  reply with this text, split by r"\\S+\\s*|\\s+", instead of the generated tokens
    loop=1          repeat "I am stuck in a loop. " word by word until the client leaves (ignores n)
    stall_after=5   after 5 tokens, send nothing for `stall` seconds (no `stall`: until the client leaves)
    stall=2         the stall's length; without stall_after the stall comes before the first token
    error_after=5   after 5 tokens end the stream with an in-stream error event (non-stream: HTTP 500)
    status=429      answer this HTTP status at once, with a provider-shaped error body
    fail_times=2    answer `status` (default 503) to the first 2 requests with the same behaviour, then behave
    slow_close=1    streaming: wait this long before the final ``data: [DONE]`` / ``message_stop``
The request's max_tokens / max_completion_tokens caps the tokens (finish "length" / stop_reason "max_tokens").

Where the behaviour comes from, per option: the model name (``fake@tps=50,n=10``, whose base ``fake`` is echoed
as the model), else the runtime default set by ``POST /_fake/behaviour`` (a JSON object of options; ``{}`` resets).

Endpoints:
    GET  /v1/models            OpenAI list, or Anthropic's shape when the request has an anthropic-version header
    POST /v1/chat/completions  OpenAI chat completions, streamed (honours stream_options.include_usage) or not
    POST /v1/messages          Anthropic Messages, streamed (message_start .. message_stop, with one ping) or not
    GET  /_fake/stats          {requests, active, completed, disconnected, last_request} (non-streamed
                               replies count in active/completed/disconnected too)
    POST /_fake/behaviour      set the runtime default behaviour
    POST /_fake/reset          zero stats and fail_times counters, clear the default behaviour
With an api key configured, requests need ``Authorization: Bearer <key>`` (Anthropic routes: or ``x-api-key``).
Headers and the opening event (role chunk / message_start) go out at once; ttft delays the first token.

Running it:
    python -m fakeupstream [--host 127.0.0.1] [--port 8001] [--models a,b] [--api-key K]
        prints ``fake upstream listening on http://HOST:PORT`` (--port 0 picks a free port) and serves until
        SIGINT/SIGTERM.
    In-process: ``from fakeupstream import FakeUpstream``, ``with FakeUpstream() as fake:`` then
        ``openai.OpenAI(base_url=fake.openai_base_url, ...)`` or
        ``anthropic.Anthropic(base_url=fake.base_url, ...)``; ``start()``/``stop()`` work too.

A tool for tests, benchmarks and scripts: no module of the service imports it (tests/test_layers.py).
"""

from fakeupstream.app import DEFAULT_MODELS, create_app
from fakeupstream.server import FakeUpstream

__all__ = ["DEFAULT_MODELS", "FakeUpstream", "create_app"]
