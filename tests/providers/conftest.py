"""Fixtures for the provider tests: Prism mocks of each provider's spec, and a small loopback
server of our own that speaks the same APIs (``loopback.py``, with the message builders).

Prism is started once per session per spec, on a free port of 127.0.0.1, and is
ready when its port accepts connections (polled with a deadline); it is killed
at the end of the session. Without node or Prism the contract tests are skipped
with the reason (``bash scripts/install-test-tools.sh`` installs Prism).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from .loopback import (  # noqa: F401  (the tests import these from here)
    KEYS,
    NOW,
    PDF,
    FakeApi,
    Reply,
    Seen,
    Sleeps,
    free_port,
    make_message,
    make_provider,
    speaks,
    wait_for_port,
)

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO.parent / "shared" / "provider-specs"
PRISM = REPO / ".tools" / "prism" / "node_modules" / ".bin" / "prism"
SPEC_FILES = {
    "postmark": "postmark/postmark-server-openapi-3.0.json",
    "sendgrid": "sendgrid/tsg_mail_v3.yaml",
    "sendgrid-scheduled": "sendgrid/tsg_scheduled_sends_v3.yaml",
    "mailgun": "mailgun/mailgun-send-only.prism.yaml",
    "resend": "resend/resend.yaml",
}


@pytest.fixture(scope="session")
def prism():
    """prism(name) -> base URL of a Prism mock serving that provider's spec."""
    running, procs = {}, []

    def start(name):
        if name in running:
            return running[name]
        if shutil.which("node") is None:
            pytest.skip("node is not installed: Prism contract tests need it")
        if not PRISM.exists():
            pytest.skip(f"Prism is not installed at {PRISM}: run bash scripts/install-test-tools.sh")
        spec = SPECS / SPEC_FILES[name]
        if not spec.exists():
            pytest.skip(f"provider spec {spec} is missing (shared/ must sit beside the repo)")
        port = free_port()
        proc = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        procs.append(proc)
        if not wait_for_port(port, proc):
            pytest.fail(f"Prism did not start for {spec}")
        running[name] = f"http://127.0.0.1:{port}"
        return running[name]

    yield start
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def fake_api():
    """fake_api(name) -> a FakeApi answering like that provider."""
    made = []

    def build(name):
        api = FakeApi()
        api.default = speaks(name)
        made.append(api)
        return api

    yield build
    for api in made:
        api.close()
