"""Settings and campaign files: every problem is named with how to fix it."""

from __future__ import annotations

import ast

import pytest

from sender.campaigns import load_campaigns
from sender.config import SETTINGS, Settings, env_file_text
from sender.errors import CampaignError, ConfigError
from tests.conftest import REPO, base_env


def test_missing_settings_are_named_with_how_to_set_them(tmp_path):
    env = base_env(tmp_path)
    for name in ("DRIP_FROM", "DRIP_SECRET_KEY", "DRIP_BASE_URL", "DRIP_POSTAL_ADDRESS"):
        del env[name]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    for name in ("DRIP_FROM", "DRIP_SECRET_KEY", "DRIP_BASE_URL", "DRIP_POSTAL_ADDRESS"):
        assert f"{name} is not set" in message
    assert "drip init" in message and ".env" in message


@pytest.mark.parametrize("name,value,expected", [
    ("DRIP_PROVIDER", "pigeon", "not one of"),
    ("DRIP_TIMEZONE", "Mars/Base", "IANA"),
    ("DRIP_SEND_WINDOW", "whenever", "send window"),
    ("DRIP_BASE_URL", "http://mail.example.com", "https"),
    ("DRIP_FROM", "not an address", "not an email address"),
    ("DRIP_SECRET_KEY", "short", "too short"),
    ("DRIP_MAX_ATTEMPTS", "0", "DRIP_MAX_ATTEMPTS"),
    ("DRIP_GUIDE_ATTACH", "maybe", "true or false"),
    ("DRIP_SIGNUP_LIMIT_IP", "lots", "whole number"),
    ("DRIP_SIGNUP_LIMIT_ADDRESS", "-1", "0 or more"),
    ("DRIP_PROXY_COUNT", "1.5", "whole number"),
    ("DRIP_CONSENT_TEXT", "Yes,\nsend me mail", "one line"),
    ("DRIP_CONSENT_VERSION", "2\r\n", "one line"),
    ("DRIP_DKIM_SELECTORS", "s1, bad selector", "not a DNS name"),
    ("DRIP_SPF_INCLUDE", "https://_spf.example.net", "not a DNS name"),
])
def test_invalid_settings(tmp_path, name, value, expected):
    with pytest.raises(ConfigError, match=expected) as caught:
        Settings.from_env(base_env(tmp_path, **{name: value}))
    assert name in str(caught.value)


def test_defaults_and_secrets(tmp_path):
    env = base_env(tmp_path, SENDGRID_API_KEY="SG.secret-value")
    del env["DRIP_TIMEZONE"]
    settings = Settings.from_env(env)
    assert settings.timezone_name == "UTC" and settings.provider == "outbox"
    assert settings.coach.name == "Coach Example"
    assert settings.guide_url == "https://mail.example.com/guide"
    assert "SG.secret-value" in settings.secrets()
    assert str(settings.reply_to) == str(settings.sender)


def test_the_web_and_doctor_settings_are_read_here(tmp_path):
    """Parsed once, in config.py: the web app, the signup rules and `drip doctor` read these
    attributes, never the raw values."""
    defaults = Settings.from_env(base_env(tmp_path))
    assert (defaults.signup_limit_ip, defaults.signup_limit_address, defaults.proxy_count) == \
        (20, 3, 0)
    assert defaults.consent_version == "1" and defaults.consent_text.startswith("Yes, send me")
    assert (defaults.dkim_selectors, defaults.spf_include) == ([], "")
    assert defaults.guide_build_dir.name == "guide"
    given = Settings.from_env(base_env(
        tmp_path, DRIP_SIGNUP_LIMIT_IP="0", DRIP_PROXY_COUNT="2", DRIP_CONSENT_VERSION="v2",
        DRIP_DKIM_SELECTORS=" 20240101000000pm, S2 ,", DRIP_SPF_INCLUDE="_SPF.mailhost.net.",
        DRIP_WEBSITE_URL="https://Coach.Example/home", DRIP_REDIRECT_HOSTS="shop.example"))
    assert (given.signup_limit_ip, given.proxy_count, given.consent_version) == (0, 2, "v2")
    assert given.dkim_selectors == ["20240101000000pm", "s2"]
    assert given.spf_include == "_spf.mailhost.net"
    assert given.redirect_hosts == {"coach.example", "shop.example"}


@pytest.mark.parametrize("name,value", [("DRIP_SIGNUP_LIMIT_IP", "lots"),
                                        ("DRIP_DKIM_SELECTORS", "bad selector")])
def test_a_bad_value_stops_any_command_at_start_with_its_name(run, drip, name, value):
    """Not only the command that uses it: `drip status` and `drip subscribers add` stop
    (exit 1, no traceback) before doing anything, naming the setting and the value."""
    for args in (["status"], ["subscribers", "add", "ana@example.com", "--confirmed"]):
        result = run(*args, extra_env={name: value})
        assert result.exit_code == 1, (args, result.output)
        assert f"{name}: {value!r}" in result.output and "Traceback" not in result.output
    assert list(drip.store.list_subscribers()) == []


def test_a_bad_provider_setting_stops_any_command_when_that_provider_is_chosen(run, drip):
    """The chosen provider's settings are parsed at start with the rest: a bad SMTP_PORT stops
    `drip status` (not only the first send) with its name and what is wrong; with another
    provider chosen it is none of the run's business."""
    smtp = {"DRIP_PROVIDER": "smtp", "SMTP_HOST": "127.0.0.1"}
    for value, problem in (("abc", "whole number"), ("70000", "65535"), ("0", "1 or more")):
        for args in (["status"], ["subscribers", "add", "ana@example.com", "--confirmed"]):
            result = run(*args, extra_env={**smtp, "SMTP_PORT": value})
            assert result.exit_code == 1, (args, value, result.output)
            assert f"SMTP_PORT: {value!r}" in result.output and problem in result.output
            assert "SMTP_PORT in .env" in result.output and "Traceback" not in result.output
    assert list(drip.store.list_subscribers()) == []
    result = run("subscribers", "add", "ana@example.com", "--confirmed",
                 extra_env={"DRIP_PROVIDER": "outbox", "SMTP_PORT": "abc"})
    assert result.exit_code == 0, result.output
    assert [s.email for s in drip.store.list_subscribers()] == ["ana@example.com"]


def test_code_reads_provider_settings_as_parsed_values(tmp_path):
    from sender.providers import get_provider

    settings = Settings.from_env(base_env(tmp_path, DRIP_PROVIDER="smtp", SMTP_HOST="127.0.0.1",
                                          SMTP_PORT=" 2525 ", SMTP_SECURITY="none"))
    assert settings.value("SMTP_PORT") == 2525 and settings.value("SMTP_SECURITY") == "none"
    provider = get_provider(settings)
    assert (provider.host, provider.port, provider.security) == ("127.0.0.1", 2525, "none")
    with pytest.raises(ConfigError, match="SMTP_SECURITY: 'ssl' is not one of") as caught:
        Settings.from_env(base_env(tmp_path, DRIP_PROVIDER="smtp", SMTP_SECURITY="ssl"))
    assert "SMTP_SECURITY in .env" in str(caught.value)
    with pytest.raises(ConfigError, match="POSTMARK_API_URL: 'api.postmarkapp.com' is not"):
        Settings.from_env(base_env(tmp_path, DRIP_PROVIDER="postmark",
                                   POSTMARK_API_URL="api.postmarkapp.com"))
    # Not chosen: parsed, with the same message, when something asks for it.
    other = Settings.from_env(base_env(tmp_path, SMTP_PORT="abc"))
    with pytest.raises(ConfigError, match="SMTP_PORT: 'abc' is not a whole number"):
        other.value("SMTP_PORT")


# --- every setting is parsed in one place --------------------------------------------------
# The modules that turn a setting's text into its value: the table, the value parsers and
# ``Settings``. Everything else reads parsed values (``settings.value(NAME)`` or attributes).
PARSING_MODULES = {"sender/config.py", "sender/setting.py", "sender/setting_values.py",
                   "sender/settings_table.py"}
# And the CLI loading .env into the environment (its path settings made absolute).
ENV_LOADING = {"sender/cli/common.py"}
PARSERS = {"int", "float", "Decimal", "bool", "Path", "timedelta", "parse_duration",
           "parse_window", "zone", "parse_hosts"}
TEXT_METHODS = {"lower", "upper", "casefold", "strip", "lstrip", "rstrip", "split", "rsplit",
                "partition", "removeprefix", "removesuffix"}


def _named(node, name):
    return (isinstance(node, ast.Name) and node.id == name) or (
        isinstance(node, ast.Attribute) and node.attr == name)


def _raw_read(node, tainted=frozenset()):
    """Whether ``node`` is a setting's raw text (or falls back to it): ``settings.get(..)``,
    ``settings.require(..)``, an environment read, or a name assigned from one of them."""
    if isinstance(node, ast.BoolOp):
        return any(_raw_read(v, tainted) for v in node.values)
    if isinstance(node, ast.Name):
        return node.id in tainted
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        func = node.func
        return ((func.attr in ("get", "require") and _named(func.value, "settings"))
                or (func.attr == "get" and _named(func.value, "environ"))
                or func.attr == "getenv")
    return isinstance(node, ast.Subscript) and _named(node.value, "environ")


def _setting_parses(tree, setting_names):
    """{line: what} where code turns a setting's raw text into a value itself: passes it to
    a parser (``int``, ``parse_duration``, or a parser handed in as a parameter), reshapes it
    with a string method, gives it a default of its own (``get(..) or "x"``), or reads a
    setting from the environment."""
    found = {}
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    top = ast.Module(body=[n for n in tree.body if not isinstance(
        n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)], type_ignores=[])
    for scope in (top, *functions):
        params = ({a.arg for a in (*scope.args.args, *scope.args.kwonlyargs)}
                  if not isinstance(scope, ast.Module) else set())
        tainted = {t.id for n in ast.walk(scope) if isinstance(n, ast.Assign) and _raw_read(n.value)
                   for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(scope):
            if isinstance(node, ast.Call):
                func = node.func
                if (isinstance(func, ast.Name) and (func.id in PARSERS or func.id in params)
                        and any(_raw_read(a, tainted) for a in node.args)):
                    found[node.lineno] = f"{func.id}() of a setting's text"
                elif (isinstance(func, ast.Attribute) and func.attr in TEXT_METHODS
                      and _raw_read(func.value, tainted)):
                    found[node.lineno] = f".{func.attr}() of a setting's text"
                elif (isinstance(func, ast.Attribute) and func.attr == "get"
                      and _named(func.value, "environ") and node.args
                      and isinstance(node.args[0], ast.Constant)
                      and node.args[0].value in setting_names):
                    found[node.lineno] = f"environment read of {node.args[0].value}"
            elif isinstance(node, ast.Subscript) and _named(node.value, "environ"):
                key = node.slice
                if isinstance(key, ast.Constant) and key.value in setting_names:
                    found[node.lineno] = f"environment read of {key.value}"
            elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                if any(_raw_read(v, tainted) for v in node.values) and any(
                        isinstance(v, ast.Constant) and v.value not in ("", None)
                        for v in node.values):
                    found[node.lineno] = "a default given outside the settings table"
    return found


def test_no_module_outside_config_parses_a_setting():
    names = {s.name for s in SETTINGS}
    parses = {}
    for path in sorted((REPO / "sender").rglob("*.py")):
        where = str(path.relative_to(REPO))
        if where in PARSING_MODULES | ENV_LOADING:
            continue
        found = _setting_parses(ast.parse(path.read_text()), names)
        parses.update({f"{where}:{line}": what for line, what in found.items()})
    assert parses == {}, ("parse a setting where it is declared (a Setting's parse=) and read "
                          f"settings.value(NAME): {parses}")


def test_the_setting_parse_check_finds_what_it_looks_for():
    source = '''
def build(settings, kind):
    port = int(settings.get("SMTP_PORT"))
    raw = settings.get(name)
    value = kind(raw)
    domain = (settings.get("MAILGUN_DOMAIN") or "").lower()
    stream = stream or drip.settings.get("POSTMARK_MESSAGE_STREAM") or "broadcast"
    database = os.environ.get("DRIP_DATABASE")
    url = environ["DRIP_BASE_URL"]
    fine = settings.value("SMTP_PORT"), settings.get("SMTP_HOST") or "", int(count)
    path = os.environ.get("PATH_INFO")
'''
    found = _setting_parses(ast.parse(source), {"SMTP_PORT", "DRIP_DATABASE", "DRIP_BASE_URL"})
    assert sorted(found) == [3, 5, 6, 7, 8, 9]


def test_env_example_documents_every_setting():
    text = (REPO / ".env.example").read_text()
    assert text == env_file_text(example=True), "regenerate: python -m sender.config > .env.example"
    for setting in SETTINGS:
        assert setting.name in text


def test_init_file_has_a_fresh_secret():
    first, second = env_file_text(), env_file_text()
    secret = [line for line in first.splitlines() if line.startswith("DRIP_SECRET_KEY=")][0]
    assert len(secret.split("=", 1)[1]) >= 32 and first != second


def test_shipped_campaigns_load():
    campaigns = load_campaigns(REPO / "campaigns", templates_dir=REPO / "templates")
    assert campaigns.confirmation.id == "confirmation"
    glute = campaigns.get("glute-progression")
    assert 7 <= len(glute.steps) <= 10
    assert all(step.exercise for step in glute.steps[3:])


def write(path, text):
    path.write_text(text)
    return path


def test_every_problem_in_a_campaign_is_reported_with_file_and_key(tmp_path):
    folder = tmp_path / "campaigns"
    folder.mkdir()
    write(folder / "bad.toml", """
window = "sometimes"
colour = "blue"

[campaign]
name = "Bad"

[entry]
on = "birthday"

[[steps]]
id = "one"
template = "x"
subject = "One"
delay = "3 days"

[[steps]]
id = "one"
subject = ""
delay = "1w"
after = "lunch"
extra = 1
""")
    with pytest.raises(CampaignError) as caught:
        load_campaigns(folder)
    problems = caught.value.problems
    text = "\n".join(problems)
    for key in ("window", "colour", "entry.on", "steps[1].delay", "steps[2].id", "steps[2].template",
                "steps[2].subject", "steps[2].after", "steps[2].extra"):
        assert f"bad.toml: {key}:" in text, key
    assert all(str(folder / "bad.toml") in p for p in problems)


def test_toml_syntax_error_names_the_line(tmp_path):
    folder = tmp_path / "campaigns"
    folder.mkdir()
    write(folder / "broken.toml", '[campaign]\nname = "x"\n[[steps]\n')
    with pytest.raises(CampaignError, match=r"broken.toml: not valid TOML: .*line 3"):
        load_campaigns(folder)


def test_missing_template_file_is_reported(project):
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text().replace('template = "course/two"', 'template = "course/nope"'))
    with pytest.raises(CampaignError, match=r"steps\[2\].template: 'course/nope': no file"):
        load_campaigns(project / "campaigns", templates_dir=project / "templates")


def test_two_signup_campaigns_rejected(project):
    (project / "campaigns" / "again.toml").write_text(
        (project / "campaigns" / "confirmation.toml").read_text())
    with pytest.raises(CampaignError, match="only one campaign"):
        load_campaigns(project / "campaigns")


@pytest.mark.parametrize("claim,http,ok", [("10m", "30", True), ("1m", "45", False),
                                          ("5m", "45", False), ("7m", "45", True),
                                          ("2m", "1", True), ("90s", "1", False),
                                          ("0", "1", False), ("0s", "30", False)])
def test_claim_timeout_must_outlast_a_slow_provider(tmp_path, claim, http, ok):
    """A claim that times out while the provider may still answer is checked (and perhaps
    resent) by another run: such settings are refused at start, with both names."""
    env = base_env(tmp_path, DRIP_CLAIM_TIMEOUT=claim, DRIP_HTTP_TIMEOUT=http)
    if ok:
        Settings.from_env(env)
        return
    with pytest.raises(ConfigError, match="DRIP_CLAIM_TIMEOUT") as caught:
        Settings.from_env(env)
    assert "DRIP_HTTP_TIMEOUT" in str(caught.value) and "at least" in str(caught.value)


def test_a_low_rate_limit_counts_toward_the_claim_timeout(tmp_path):
    """The rate limiter's wait before each attempt is part of how long a hand-off can take:
    one request every 100 s and a two-minute claim could be taken over mid-request."""
    env = base_env(tmp_path, DRIP_CLAIM_TIMEOUT="107s", DRIP_HTTP_TIMEOUT="1",
                   DRIP_RATE_LIMIT="0.01")
    with pytest.raises(ConfigError, match="DRIP_RATE_LIMIT") as caught:
        Settings.from_env(env)
    assert "DRIP_CLAIM_TIMEOUT" in str(caught.value)
    Settings.from_env({**env, "DRIP_RATE_LIMIT": "5", "DRIP_CLAIM_TIMEOUT": "2m"})   # fine


def test_a_step_subject_that_could_never_be_a_header_is_a_campaign_problem(project):
    from sender.campaigns import load_campaign
    path = project / "campaigns" / "course.toml"
    path.write_text(path.read_text().replace('subject = "Lesson one"',
                                             'subject = "=?utf-8?b?SGk=?= {{ subscriber.first_name }}"'))
    campaign, problems = load_campaign(path)
    assert campaign is None
    assert any("steps[1].subject" in p and "encoded word" in p for p in problems), problems
