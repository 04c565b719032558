"""`drip --help` loads only what help needs: the command list is known without importing
each command's module, and the heavy libraries (Jinja, the HTTP client, markdownify, the
CSS inliner, the HTML parser) stay unloaded until a command uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sender.cli import LAZY_COMMANDS, cli

HEAVY = ("jinja2", "requests", "markdownify", "css_inline", "bs4", "sender.drip",
         "sender.store", "sender.render", "werkzeug", "dns")

PROBE = """
import json, sys
from sender.cli import main
try:
    sys.argv = ["drip"] + json.loads(sys.argv[1])
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_by(args, tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return done.stdout, report["code"], set(report["modules"])


def test_help_loads_no_heavy_library(tmp_path):
    out, code, modules = loaded_by(["--help"], tmp_path)
    assert code == 0
    for name, (_, _, summary) in LAZY_COMMANDS.items():
        assert name in out and summary.split()[0] in out
    assert not {m.split(".")[0] if not m.startswith("sender.") else ".".join(m.split(".")[:2])
                for m in modules} & set(HEAVY)


# What `drip --help` used to load and needs none of: the settings table and what it pulls in
# (the brand, the scheduler, the email package, time zones), python-dotenv (a .env is read
# only when a command runs or --env-file is given), logging, and the package metadata
# machinery a console script may use to find its entry point.
HELP_SKIPS = ("dotenv", "logging", "email", "zoneinfo", "secrets", "importlib.metadata",
              "pkg_resources", "sender.config", "sender.setting", "sender.setting_values",
              "sender.settings_table", "sender.brand", "sender.schedule", "sender.headers",
              "sender.logging_setup", "sender.providers", "sender.errors")


def _skipped_by_help(modules):
    return {name for name in modules if any(name == skip or name.startswith(skip + ".")
                                            for skip in HELP_SKIPS)}


def test_help_skips_settings_dotenv_and_logging(tmp_path):
    out, code, modules = loaded_by(["--help"], tmp_path)
    assert code == 0 and "--env-file" in out and "Commands:" in out
    assert _skipped_by_help(modules) == set()


def test_the_console_script_help_skips_them_too(tmp_path):
    """The `drip` script pip wrote into this venv, run as a user runs it: every module it
    imports, from Python's own -X importtime list. A .env in the folder is not read for help."""
    script = Path(sys.executable).parent / "drip"
    if not script.is_file():
        pytest.skip(f"no drip console script beside {sys.executable}")
    (tmp_path / ".env").write_text("DRIP_FROM=ana@example.com\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-X", "importtime", str(script), "--help"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and "Usage: drip [OPTIONS] COMMAND" in done.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "click.core" in imported        # the list is real: click is what help needs
    assert _skipped_by_help(imported) == set()


WARNING_PROBE = """
import json, logging, sys, warnings
from sender.cli import main
sys.argv = ["drip"] + json.loads(sys.argv[1])
try:
    main()
except SystemExit:
    pass
logged = []
handler = logging.Handler()
handler.emit = lambda record: logged.append(record.getMessage())
logging.getLogger("py.warnings").addHandler(handler)
warnings.warn("a probe warning")
print(json.dumps(logged), file=sys.stderr)
"""


def test_a_command_still_sends_warnings_to_the_log(tmp_path):
    """Help skips logging, but once a command runs Python's warnings go through logging (as
    they did when main() set that up before parsing), not straight to the terminal."""
    done = subprocess.run([sys.executable, "-c", WARNING_PROBE, json.dumps(["plan", "--help"])],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    logged = json.loads(done.stderr.strip().splitlines()[-1])
    assert len(logged) == 1 and "UserWarning: a probe warning" in logged[0]


def test_a_command_still_loads_what_it_needs(tmp_path):
    out, code, modules = loaded_by(["plan", "--help"], tmp_path)
    assert code == 0 and "--days" in out


def test_the_help_table_matches_each_command():
    """The short help listed without importing a command is the command's own."""
    ctx = click.Context(cli)
    for name, (_, _, summary) in LAZY_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=1000).startswith(summary), name
    assert sorted(cli.list_commands(ctx)) == sorted({*LAZY_COMMANDS, "init"})


def test_an_unknown_command_is_bad_usage():
    result = CliRunner().invoke(cli, ["sned"])
    assert result.exit_code == 2 and "No such command 'sned'" in result.output
