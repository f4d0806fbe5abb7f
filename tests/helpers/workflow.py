"""The repository, the shared data and running the workflow (snakemake subprocesses), and a local HTTP file server: helpers of many test files."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
import pytest


REPO = Path(__file__).resolve().parents[2]


SHARED_DATA = REPO.parent / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI where it fails the test."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def offline_prefix() -> list[str]:
    """Command prefix that runs a program without any network (a fresh network namespace), if possible."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def snakemake_command(workdir: Path, *args: str, offline: bool = False) -> list[str]:
    """The command line that runs the workflow's Snakefile in ``workdir`` (without network if ``offline``)."""
    import sys

    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               *args]
    return offline_prefix() + command if offline else command


def run_snakemake(workdir: Path, *args: str, timeout: int = 900, offline: bool = False,
                  check: bool = True):
    """Run the workflow's Snakefile in ``workdir`` (a subprocess); return the CompletedProcess.

    With ``check`` a non-zero exit fails the test and shows the tail of the output.
    """
    import subprocess

    result = subprocess.run(snakemake_command(workdir, *args, offline=offline), capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


class FileServer:
    """State of :func:`file_server`: the files it serves and the failures to inject, per file name.

    ``html``: name -> Content-Type of an HTML login page served instead of the file (what an expired
    session gives); ``drop``: name -> number of responses cut off after half the body (Content-Length
    promises the whole file, unless the name is in ``no_length``: then the cut looks like the normal end
    of a close-delimited HTTP/1.0 body); ``range_support``: answer Range requests with 206 (else 200 and
    the whole file); ``drip``: name -> seconds between the bytes of a body sent one byte at a time (a
    server that trickles: each read gets something, the transfer never ends in time); ``hold``: name ->
    an event, the body is sent up to half, then the rest once the event is set. ``requests`` records
    (name, Range header) of every GET, ``sent`` the body bytes sent per name.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.html: dict[str, str] = {}
        self.drop: dict[str, int] = {}
        self.no_length: set[str] = set()
        self.range_support = True
        self.drip: dict[str, float] = {}
        self.hold: dict[str, threading.Event] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.sent: dict[str, int] = {}
        self.url = ""

    def serve_html(self, name: str, content_type: str = "text/html; charset=utf-8") -> None:
        self.html[name] = content_type


@contextlib.contextmanager
def file_server(files: dict[str, bytes]):
    """A real HTTP server on 127.0.0.1 (a thread, free port) serving ``files``; yields its :class:`FileServer`."""
    import socket
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = FileServer(files)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 (http.server's naming)
            name = self.path.lstrip("/")
            ranged = self.headers.get("Range")
            state.requests.append((name, ranged))
            if name in state.html:
                body = b"<!DOCTYPE html><html><body>Please log in</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", state.html[name])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if name not in state.files:
                self.send_error(404, "Not Found")
                return
            data = state.files[name]
            ranged = ranged if state.range_support else None
            start = int(ranged.split("=")[1].split("-")[0]) if ranged else 0
            self.send_response(206 if ranged else 200)
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
            self.send_header("Content-Type", "application/x-netcdf")
            if name not in state.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if name in state.drip:
                for index in range(len(body)):
                    try:
                        self.wfile.write(body[index:index + 1])
                    except OSError:  # the client gave up
                        return
                    state.sent[name] = state.sent.get(name, 0) + 1
                    time.sleep(state.drip[name])
                return
            if name in state.hold:
                self.wfile.write(body[: len(body) // 2])
                state.hold[name].wait(timeout=600)
                self.wfile.write(body[len(body) // 2:])
                return
            if state.drop.get(name, 0) > 0:
                state.drop[name] -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        for event in state.hold.values():
            event.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
