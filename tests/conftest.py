"""Shared test fixtures.

Real data files live in ../shared/data (beside the repository); tests that need
them skip with a reason when the folder is absent (a user's clone), but under
CI (CI=true) a missing folder is an error, so those tests always run there.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI where it fails the test."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real precipitation files (../shared/data)."""
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} not found (real-data tests need ../shared/data)")
    return SHARED_DATA


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny demo (tests/configs/tiny.yaml, two experiments) up to svd.nc and nmf.nc, built once per session;
    see reliability_helpers.build_tiny_run. Read-only: tests work on a copy (reliability_helpers.copy_run)."""
    from reliability_helpers import build_tiny_run

    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """One end-to-end run of the DEFAULT config (the offline demo) with `--cores 2`, shared by the
    tests that inspect its outputs. Runs with the network cut off (unshare -n) where possible.
    Returns the working directory (results/ inside)."""
    import time

    workdir = tmp_path_factory.mktemp("demo_run")
    start = time.perf_counter()
    run_snakemake(workdir, "--cores", "2", timeout=1200, offline=True)
    (workdir / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    # the demo run's own timing table: a later run in this folder (snakemake archive) writes the table of its jobs
    (workdir / "demo_timings.tsv").write_text((workdir / "results" / "logs" / "timings.tsv").read_text())
    return workdir


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


# ------------------------------------------------------------------ parallel test runs (pytest-xdist)
# `bash tests/run_tests.sh` runs `-n 2 --dist loadgroup` (pytest < 9.2: pyproject; tests/test_test_groups.py
# checks that the groups take effect): each group below runs on one worker, so a
# session fixture that builds a whole workflow run is built once, not once per worker, and the SLURM
# tests never share the one-node cluster with each other. Files not named here are a group each. The
# named groups (the longest) are collected first, so that the workers do not end on one of them.
TEST_GROUPS = {
    "demo_run": ("test_archive.py", "test_cf_compliance.py", "test_docs.py", "test_figures_workflow.py",
                 "test_workflow_e2e.py"),
    "tiny_run": ("test_bad_inputs.py", "test_determinism.py", "test_faults.py"),
    "slurm": ("test_slurm.py", "test_slurm_parallel.py", "test_slurm_profile.py"),
}
_GROUP_OF = {name: group for group, names in TEST_GROUPS.items() for name in names}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):  # a serial run keeps pytest's own order and needs no groups
        return
    first = list(TEST_GROUPS)
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group(_GROUP_OF.get(name, name.removesuffix(".py"))))
    items.sort(key=lambda item: first.index(_GROUP_OF[item.path.name]) if item.path.name in _GROUP_OF
               else len(first))

