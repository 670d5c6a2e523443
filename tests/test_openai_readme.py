"""The README's "Use it from the OpenAI SDKs" examples run as written (only the address
changed) against a real server with the offline model."""

import asyncio
import re
import sys
import uuid
from pathlib import Path

from tests.test_openai_node import NODE_DIR, run

README = Path(__file__).parent.parent / "README.md"


def example(language: str) -> str:
    section = README.read_text().split("## Use it from the OpenAI SDKs", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"one {language} example expected"
    return blocks[0]


async def run_python(code: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_python_example_runs(server):
    out = await run_python(example("python").replace("http://127.0.0.1:8000", server.base))
    assert "offline/simulated" in out and "> Hello" in out and "> Stream it" in out
    assert out.rstrip().endswith("completed")


async def test_javascript_example_runs(server):
    if not (NODE_DIR / "node_modules" / "openai").exists():
        await run("npm", "ci", "--no-audit", "--no-fund")
    script = NODE_DIR / f"readme-{uuid.uuid4().hex[:8]}.mjs"
    script.write_text(example("javascript").replace("http://127.0.0.1:8000", server.base))
    try:
        out = await run("node", script.name)
    finally:
        script.unlink()
    assert "> Hello from Node" in out and "**Simulated reply**" in out
