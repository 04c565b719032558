"""One folder per provider: everything about Postmark (its sending, webhook, suppression-list
sync, doctor checks and settings) lives in sender/providers/postmark/, and so on for each
provider; the code around them is generic and reaches them through the registry."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

SENDER = REPO / "sender"
PROVIDERS = SENDER / "providers"
# What only a provider's own folder may know: its auth header and its keys' setting names.
PRIVATE = re.compile(r"X-Postmark-Server-Token|POSTMARK_SERVER_TOKEN|SENDGRID_API_KEY|"
                     r"MAILGUN_API_KEY|RESEND_API_KEY", re.I)
WITH_WEBHOOKS = {"postmark", "sendgrid", "mailgun", "resend"}
# The generic code that finds a provider's parts by name: a provider folder importing it
# would be a cycle the import-graph check cannot see (the registry imports folders by name).
DRIVERS = {"sender.providers.registry", "sender.providers", "sender.webhooks",
           "sender.events_sync", "sender.doctor_providers", "sender.config"}


def _folders():
    return {p.name for p in PROVIDERS.iterdir() if (p / "__init__.py").is_file()}


def test_every_registered_provider_is_one_folder_with_its_parts():
    from sender.providers.registry import NAMES

    assert set(NAMES) == _folders() == {"outbox", "postmark", "sendgrid", "mailgun", "resend",
                                        "smtp"}
    for name in NAMES:
        parts = {p.stem for p in (PROVIDERS / name).glob("*.py")}
        assert {"__init__", "sending", "settings"} <= parts, name
        if name in WITH_WEBHOOKS:
            assert {"webhook", "suppressions", "doctor"} <= parts, name


def test_no_per_provider_tree_outside_the_provider_folders():
    assert not (SENDER / "webhooks").exists()
    assert not [p.name for p in PROVIDERS.glob("*.py")
                if p.stem in _folders()], "a provider module beside its own folder"


def test_provider_secrets_and_headers_are_named_only_in_their_folder():
    outside = []
    for path in SENDER.rglob("*.py"):
        inside = path.relative_to(PROVIDERS).parts[0] if path.is_relative_to(PROVIDERS) else None
        if inside in _folders():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if PRIVATE.search(line):
                outside.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert outside == []


def test_each_folder_brings_its_settings_to_the_table():
    from sender.config import SETTINGS
    from sender.providers.registry import part

    names = [s.name for s in SETTINGS]
    for provider, expected in (("postmark", "POSTMARK_SERVER_TOKEN"), ("mailgun", "MAILGUN_DOMAIN"),
                               ("resend", "RESEND_WEBHOOK_SECRET"), ("smtp", "SMTP_PASSWORD"),
                               ("outbox", "DRIP_OUTBOX_DIR")):
        module = part(provider, "settings")
        declared = [s.name for kind in ("CORE", "ACCOUNT", "OPTIONS", "WEBHOOK")
                    for s in getattr(module, kind, ())]
        assert expected in declared and set(declared) <= set(names), provider


def _imports(path):
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_provider_folders_never_import_the_code_that_finds_them():
    for name in _folders():
        for path in (PROVIDERS / name).glob("*.py"):
            assert not _imports(path) & DRIVERS, path.relative_to(REPO)


def test_reading_the_settings_table_loads_no_sending_code():
    probe = ("import json, sys; import sender.config; "
             "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=True)
    modules = set(json.loads(done.stdout))
    assert {f"sender.providers.{n}.settings" for n in _folders()} <= modules
    assert not {m for m in modules if m.split(".")[0] in ("requests", "cryptography")
                or m.endswith((".sending", ".webhook", ".suppressions", ".doctor"))
                or m == "sender.providers.http"}


def test_provider_modules_stay_small():
    for path in PROVIDERS.rglob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.relative_to(REPO)


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(),
                    reason="not a git checkout")
def test_no_provider_file_is_ignored_by_git():
    """.gitignore keeps a project's outbox/ folder out: not the outbox provider's folder."""
    files = [str(p.relative_to(REPO)) for p in PROVIDERS.rglob("*.py")]
    done = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == []
