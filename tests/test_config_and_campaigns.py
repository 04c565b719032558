"""Settings and campaign files: every problem is named with how to fix it."""

from __future__ import annotations

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
