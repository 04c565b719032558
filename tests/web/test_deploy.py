"""The README's deployment section: the systemd unit's exact command starts the app under
the production WSGI server, reading .env from its working folder; and the README's copy of
the signup snippet has every field the served one has."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, base_env
from tests.support import free_port

README = (REPO / "README.md").read_text()


def deployment_section():
    match = re.search(r"^## Deployment she can follow on a Saturday\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, "README has no 'Deployment she can follow on a Saturday' section"
    return match.group(1)


def test_the_readme_unit_command_serves_the_app(project):
    section = deployment_section()
    [line] = [m for m in re.findall(r"^\s*ExecStart=(.*)$", section, re.M) if "waitress-serve" in m]
    argv = shlex.split(line)
    assert argv[0] == "/srv/drip/.venv/bin/waitress-serve"
    server = Path(sys.executable).parent / "waitress-serve"
    if not server.exists():
        pytest.skip("waitress is not installed (pip install -e '.[serve]')")
    port = free_port()
    argv = [str(server)] + [arg.replace("127.0.0.1:8025", f"127.0.0.1:{port}") for arg in argv[1:]]
    assert f"--listen=127.0.0.1:{port}" in argv
    # As under systemd: the settings come from .env in the working folder, nothing else.
    env_file = "".join(f"{name}={value}\n" for name, value in base_env(project).items())
    (project / ".env").write_text(env_file)
    # The README's set-up made the database (`drip init`); the app never makes one itself.
    made = subprocess.run([sys.executable, "-m", "sender", "migrate"], cwd=project,
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    process = subprocess.Popen(argv, cwd=project, env={"PATH": "/usr/bin:/bin"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except requests.ConnectionError:
                time.sleep(0.05)
        assert answer is not None, f"the server did not answer:\n{process.stdout.read()}"
        assert answer.status_code == 200 and answer.text == "ok"
        form = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert 'action="https://mail.example.com/subscribe"' in form.text   # from .env
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()


def test_the_readme_shows_the_caddyfile_and_the_units():
    section = deployment_section()
    assert "reverse_proxy 127.0.0.1:8025" in section
    assert "drip-web.service" in section and "drip-worker.service" in section
    assert "DRIP_PROXY_COUNT=1" in section
    assert "pip install -e '.[serve]'" in section


def test_the_readme_copy_of_the_snippet_has_every_field(server):
    served = requests.get(f"{server.url}/snippet", timeout=10).text
    names = set(re.findall(r"name=&#34;([a-z]+)&#34;", served))
    assert {"email", "name", "stage", "timezone", "consent", "website", "source"} <= names
    [copy] = re.findall(r"```html\n(<form.*?)```", README, re.S)
    assert names <= set(re.findall(r'name="([a-z]+)"', copy))
    assert 'name="redirect"' in copy and "Intl.DateTimeFormat" in copy
