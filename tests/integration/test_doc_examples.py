"""Every example of README.md and docs/*.md runs as written.

The conventions (also in README.md, "Examples in these docs"):

* A fenced ``sh`` block is an example: it runs in bash (``set -euo pipefail``) in a directory
  shared by the examples of its document, in order (one can use the files an earlier one
  made), with ``ucp`` and ``ucp-bpnode`` on the ``PATH`` and a local network of its own for the
  document — one daemon with the broker, executor and datastore roles — named by ``UCP_VIA``
  and ``UCP_BPNODE_SOCKET``, and a client home of its own (``UCP_HOME``).
* In a block with lines starting with ``$ `` (a transcript), only those lines run; the other
  lines are their output. A command that is meant to fail says so at the end of its output:
  ``# exit status N``.
* A block whose first line is ``# not run: <why>`` is shown, not run (it needs other machines,
  root, or a long time).
* ``<!-- example file: NAME -->`` on the line before any fenced block writes the block's
  content to ``NAME`` first (a plan shown as TOML is the file the next example runs).
* What an example starts in the background (``&``) is stopped when the block ends; its output
  goes to files (``>out 2>err &``): the block ends when its output closes.

A document whose examples do not follow the conventions yet (being rewritten) can be listed in
:data:`NOT_REVIEWED`, with why, and is skipped; each entry goes once its examples follow them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from .daemons import Network
from .ucp_support import start_roles, stop_agents

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK_TIMEOUT_S = 120.0
NOT_REVIEWED: dict[str, str] = {}
"""Documents whose examples are not runnable yet, and why (see the module docstring)."""

_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
_FILE = re.compile(r"^<!--\s*example file:\s*(\S+)\s*-->\s*$")
_STATUS = re.compile(r"#\s*exit status (\d+)\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block of a document."""

    line: int
    """Its first line's number in the document."""
    language: str
    """The fence's info string (``sh``, ``toml``, ...)."""
    text: str
    """Its content."""
    file: str | None = None
    """The file an ``example file`` comment asks it to be written to."""

    @property
    def skipped(self) -> str | None:
        """Why it is not run (``# not run: ...``), if it is not."""
        first = self.text.lstrip().splitlines()[0] if self.text.strip() else ""
        return first[len("# not run:") :].strip() if first.startswith("# not run:") else None


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document``, in order."""
    found: list[Block] = []
    lines = document.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, language = match.group(1), match.group(2)
        previous = lines[index - 1] if index else ""
        file_match = _FILE.match(previous)
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].startswith(fence):
            body.append(lines[index])
            index += 1
        found.append(
            Block(
                start + 1,
                language,
                "\n".join(body) + "\n",
                file_match.group(1) if file_match else None,
            )
        )
        index += 1
    return found


def script(block: Block) -> str:
    """The bash script of an ``sh`` block (see the module docstring for transcripts)."""
    lines = block.text.splitlines()
    if not any(line.startswith("$ ") for line in lines):
        return block.text
    commands: list[tuple[str, int]] = []
    for line in lines:
        if line.startswith("$ "):
            commands.append((line[2:], 0))
        elif commands and (status := _STATUS.search(line)):
            commands[-1] = (commands[-1][0], int(status.group(1)))
    parts = []
    for command, expected in commands:
        parts.append(
            f"set +e\n{command}\nstatus=$?\nset -e\n"
            f'[ "$status" -eq {expected} ] || '
            f"{{ echo 'expected exit status {expected}, got '$status' from: "
            f"{command.replace(chr(39), '')}' >&2; exit 1; }}\n"
        )
    return "".join(parts)


def runnable(document: Path) -> list[Block]:
    return [b for b in blocks(document) if b.file or (b.language == "sh" and not b.skipped)]


def _cases() -> list[object]:
    cases = []
    for document in DOCS:
        name = str(document.relative_to(ROOT))
        marks = []
        if name in NOT_REVIEWED:
            marks.append(pytest.mark.skip(reason=f"examples not reviewed: {NOT_REVIEWED[name]}"))
        cases.append(pytest.param(document, id=name, marks=marks))
    return cases


def test_the_conventions_are_read_as_documented() -> None:
    sample = Path(__file__).with_name("doc_sample.md")
    found = blocks(sample)
    assert [(b.language, b.file, b.skipped) for b in found] == [
        ("toml", "plan.toml", None),
        ("sh", None, None),
        ("sh", None, "needs a second machine"),
        ("text", None, None),
    ]
    transcript = script(found[1])
    assert "ucp --version\nstatus=$?" in transcript
    assert '[ "$status" -eq 2 ]' in transcript  # "# exit status 2" on its output line
    assert "ucp (ucp-dtn)" not in transcript  # output lines do not run


@pytest.mark.parametrize("document", _cases())
async def test_the_examples_run_as_written(
    network: Network, tmp_path: Path, document: Path
) -> None:
    todo = runnable(document)
    if not any(block.language == "sh" for block in todo):
        return
    hub = await start_roles(network, "hub", "broker,executor,datastore")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "UCP_HOME": str(tmp_path / "home"),
        "UCP_VIA": hub.url,
        "UCP_BPNODE_SOCKET": str(hub.socket),
    }
    try:
        for block in todo:
            if block.file is not None:
                (work / block.file).write_text(block.text)
                continue
            await _run_block(document, block, work, env)
    finally:
        await stop_agents(tmp_path)


async def _run_block(document: Path, block: Block, work: Path, env: dict[str, str]) -> None:
    where = f"{document.relative_to(ROOT)}:{block.line}"
    process = await trio.lowlevel.open_process(
        ["bash", "-c", "set -euo pipefail\n" + script(block)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = b""
    try:
        assert process.stdout is not None
        with trio.move_on_after(BLOCK_TIMEOUT_S) as timer:
            while chunk := await process.stdout.receive_some(65536):
                output += chunk
            await process.wait()
        if timer.cancelled_caught:
            raise AssertionError(f"the example at {where} did not end within {BLOCK_TIMEOUT_S} s")
    finally:
        # What the block left running in the background (daemons started with &).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, (
        f"the example at {where} failed (exit status {process.returncode}):\n"
        f"{block.text}\n--- its output ---\n{output.decode(errors='replace')}"
    )
