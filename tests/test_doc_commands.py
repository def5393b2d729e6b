"""Every shell command in README.md and docs/*.md runs verbatim, as a newcomer would type it.

The convention (also in docs/testing.md, "Commands in the docs"):

- a command is a line of a fenced block tagged ``sh``, ``bash`` or ``shell``, or a line starting
  with ``$ `` in a ``console`` block or an untagged one; a block of commands with no tag is an error
  here (tag it ``sh``), so no command escapes the test by its formatting;
- an HTML comment right above a block says how to run it: ``<!-- doc-test: files PATH ... -->``
  copies those repository files into the scratch folder first (same relative paths),
  ``<!-- doc-test: slow -->`` runs the block only in the slow profile, and
  ``<!-- doc-test: skip REASON -->`` never runs it (the reason shows in the test report);
  ``<!-- doc-test: python -->`` above a ``python`` block runs it as one program (other Python
  blocks are fragments of a page and are not run);
- a command's trailing comment may say ``needs: X, Y``: a Python module (``torch``, ``ray``…) runs
  only where it imports; ``slow`` only in the slow profile; anything else (``network``, ``your
  model``) is never run here and shows as skipped with that reason.

Each block runs in a fresh temporary folder, with ``ridgeline`` and ``python`` on PATH meaning
this checkout's package and interpreter (``.venv/bin/python`` too, as ``make`` makes it); every
command must exit 0, and no file may appear in the repository. In CI a line that is a plain
``ridgeline ARGS`` runs through ``ridgeline.cli.main(ARGS)`` in-process (an interpreter start per
line would cost more than the budget); the slow profile runs every line in a shell, marked ones
too: ``RIDGELINE_DOC_COMMANDS=all pytest tests/test_doc_commands.py``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import cli_in_process

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_TAGS = {"sh", "bash", "shell"}
SLOW = os.environ.get("RIDGELINE_DOC_COMMANDS", "") == "all"
#: seconds one command may take in CI before it should be marked ``needs: slow``
COMMAND_TIMEOUT = 600
_MARKER = re.compile(r"<!--\s*doc-test:\s*(\w+)\s*(.*?)\s*-->")
_NEEDS = re.compile(r"#.*?\bneeds:\s*([^#)]+?)\)?\s*$")


@dataclass
class Block:
    doc: str
    line: int
    commands: list[tuple[int, str]]
    files: list[str] = field(default_factory=list)
    slow: bool = False
    skip: str | None = None
    python: bool = False

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(path: Path, root: Path = REPO) -> list[Block]:
    """The blocks of ``path`` that hold commands, with the markers above them."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = str(path.relative_to(root))
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```+\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        tag, start = m.group(2).lower(), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].lstrip().startswith("```"):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1
        block = Block(doc, start + 1, [])
        j = start - 1
        while j >= 0 and (mk := _MARKER.search(lines[j])):
            kind, arg = mk.group(1), mk.group(2)
            if kind == "files":
                block.files += arg.split()
            elif kind == "slow":
                block.slow = True
            elif kind == "skip":
                block.skip = arg or "marked skip"
            elif kind == "python":
                block.python = True
            else:
                raise ValueError(f"{doc}:{j + 1}: unknown doc-test marker {kind!r} (files, slow, skip, python)")
            j -= 1
        if tag in SHELL_TAGS:
            block.commands = [(n, t.strip()) for n, t in body if t.strip() and not t.lstrip().startswith("#")]
        elif tag in ("console", ""):
            block.commands = [(n, t.strip()[2:]) for n, t in body if t.strip().startswith("$ ")]
        elif tag == "python" and block.python:  # a whole program, run as one `python -c`
            block.commands = [(start + 2, shlex.join(["python", "-c", "\n".join(t for _, t in body)]))]
        if block.commands:
            out.append(block)
    return out


def untagged_command_blocks(path: Path) -> list[str]:
    """Untagged blocks whose lines look like commands: they must say ``sh``."""
    bad, lines = [], path.read_text(encoding="utf-8").splitlines()
    starts = ("ridgeline ", "python ", "pip ", "make ", ".venv/", "pytest ", "/")
    for n, text in enumerate(lines):
        if text.strip() == "```" and n + 1 < len(lines) and lines[n + 1].lstrip().startswith(starts):
            # a closing fence is followed by prose or a blank line, not by a command
            opening = sum(1 for t in lines[:n] if t.lstrip().startswith("```")) % 2 == 0
            if opening:
                bad.append(f"{path.relative_to(REPO)}:{n + 1}")
    return bad


ALL_BLOCKS = [b for doc in DOCS for b in blocks(doc)]


def needs(command: str) -> list[str]:
    m = _NEEDS.search(command)
    return [w.strip() for w in m.group(1).split(",") if w.strip()] if m else []


def why_not(block: Block, command: str) -> str | None:
    """Why this command does not run here (None: it runs)."""
    if block.skip:
        return block.skip
    if block.slow and not SLOW:
        return "slow (RIDGELINE_DOC_COMMANDS=all runs it)"
    for need in needs(command):
        if need == "slow":
            if not SLOW:
                return "slow (RIDGELINE_DOC_COMMANDS=all runs it)"
        elif re.fullmatch(r"[A-Za-z_][\w.]*", need):
            if importlib.util.find_spec(need) is None:
                return f"needs {need}"
        else:
            return f"needs {need}"
    return None


def _repo_state() -> set[str]:
    """The files in the repository that git does not know (and does not ignore)."""
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                       capture_output=True, text=True, check=False)
    return {line[3:] for line in r.stdout.splitlines() if line.startswith("??")}


def _scratch(tmp_path: Path, block: Block) -> dict[str, str]:
    """The scratch folder's files and the environment: ``ridgeline``/``python`` are this checkout's."""
    bin_dir = tmp_path / ".bin"
    shims = {bin_dir / "ridgeline": f'"{sys.executable}" -m ridgeline', bin_dir / "python": f'"{sys.executable}"',
             tmp_path / ".venv" / "bin" / "python": f'"{sys.executable}"'}  # what `make` sets up in a clone
    for shim, cmd in shims.items():
        shim.parent.mkdir(parents=True, exist_ok=True)
        shim.write_text(f'#!/bin/sh\nexec {cmd} "$@"\n')
        shim.chmod(0o755)
    for spec in block.files:  # PATH, or DEST=PATH to copy it under another name
        dest, _, rel = spec.rpartition("=")
        src, dst = REPO / rel, tmp_path / (dest or rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    return env


def test_command_blocks_are_tagged():
    bad = [b for doc in DOCS for b in untagged_command_blocks(doc)]
    assert not bad, "blocks of commands with no language tag (say ```sh):\n" + "\n".join(bad)


def test_the_reader_finds_commands_and_markers(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("<!-- doc-test: files a/b.onnx -->\n<!-- doc-test: slow -->\n```sh\n# a comment\n"
                   "ridgeline show a/b.onnx   # needs: torch\n```\n\n```console\n$ ridgeline passes\n"
                   "fold-constants  ...\n```\n```text\nridgeline not run\n```\n")
    found = blocks(doc, root=tmp_path)
    assert [(b.files, b.slow, [c for _, c in b.commands]) for b in found] == [
        (["a/b.onnx"], True, ["ridgeline show a/b.onnx   # needs: torch"]),
        ([], False, ["ridgeline passes"])]
    assert needs(found[0].commands[0][1]) == ["torch"]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.id)
def test_doc_commands_run_verbatim(block: Block, tmp_path: Path, monkeypatch):
    runnable = [(n, c) for n, c in block.commands if why_not(block, c) is None]
    if not runnable:
        pytest.skip("; ".join(sorted({why_not(block, c) or "" for _, c in block.commands})))
    env = _scratch(tmp_path, block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = _repo_state()
    for n, command in block.commands:
        if why_not(block, command) is not None:
            continue
        argv = None if SLOW else _plain_ridgeline(command)
        if argv is not None:  # the entry point's own function, without a new interpreter per line
            r = cli_in_process(argv)
        else:
            r = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=COMMAND_TIMEOUT, check=False)
        code, out, err = r.returncode, r.stdout, r.stderr
        assert code == 0, (f"{block.doc}:{n}: `{command}` exited {code}\n"
                           f"--- stderr ---\n{err[-3000:]}\n--- stdout ---\n{out[-1500:]}")
    new = _repo_state() - before
    assert not new, f"{block.id}: the commands left files in the repository: {sorted(new)}"


def _plain_ridgeline(command: str) -> list[str] | None:
    """``ridgeline ARGS`` with no shell syntax -> ARGS (the CI profile runs those in-process)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    if not words or words[0] != "ridgeline" or any(ch in command.split("#")[0] for ch in "|&;<>$`*?"):
        return None
    return words[1:]
