"""Assertions shared by tests (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations


def assert_user_error(proc, *fragments: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f.lower() in lines[0].lower(), (f, lines[0])


def cli_in_process(args, cwd=None):
    """``ridgeline ARGS`` through ``ridgeline.cli.main`` in this process, as ``python -m ridgeline``
    would run it: a CompletedProcess with its exit status and its stdout/stderr text. Log records
    and Python's default warnings go to that stderr (as in a fresh interpreter, not to pytest's
    capture), an uncaught exception is a traceback and status 1, and ``cwd`` is the working folder."""
    import contextlib
    import io
    import logging
    import os
    import subprocess
    import traceback
    import warnings

    from ridgeline.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    here, columns = os.getcwd(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "160"
    try:
        root.handlers, root.level = [], logging.WARNING   # main's basicConfig installs its own on `err`
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)    # the interpreter's default filters
            warnings.showwarning = lambda m, c, f, n, file=None, line=None: err.write(
                warnings.formatwarning(m, c, f, n, line))
            try:
                code = main(argv)
            except SystemExit as e:  # argparse: --help, usage errors
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
                if isinstance(e.code, str):
                    err.write(e.code + "\n")
            except Exception:  # noqa: BLE001 - the interpreter would print it and exit 1
                traceback.print_exc(file=err)
                code = 1
    finally:
        os.chdir(here)
        root.handlers, root.level = handlers, level
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return subprocess.CompletedProcess(["ridgeline", *argv], code, out.getvalue(), err.getvalue())
