"""`drip --help` loads only what help needs: the command list is known without importing
each command's module, and the heavy libraries (Jinja, the HTTP client, markdownify, the
CSS inliner, the HTML parser) stay unloaded until a command uses them."""

from __future__ import annotations

import json
import subprocess
import sys

import click
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
