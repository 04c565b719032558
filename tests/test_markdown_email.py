"""Emails written in Markdown (``sender/markdown_email.py``): the same layout, escaping,
plain-text part and checks as an HTML body; Jinja tags untouched by Markdown; a person's
values never read as Markdown; errors at the coach's own file and line; broadcast bodies
from a second root (``@broadcasts/NAME``)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from sender.checks import check_project
from sender.cli import cli
from sender.compose import compose
from sender.errors import CampaignError, TemplateError
from sender.markdown_email import to_template
from sender.models import Subscriber
from sender.samples import SAMPLES
from tests.support import FIXTURES, at, base_env

NOW = at("2026-03-02T18:00Z")
WALK = "templates/emails/md/walk.md"


@pytest.fixture
def project(shipped):
    """The shipped project plus tests/fixtures/markdown: an exercise email in Markdown, its
    twin in HTML, and a broadcast file."""
    shutil.copytree(FIXTURES / "markdown", shipped, dirs_exist_ok=True)
    return shipped


def person(name="Ana Souza", uid="uid-ana", **fields):
    return Subscriber(id=1, uid=uid, email="ana@example.com", name=name, timezone=None,
                      status="active", tags=[], fields=dict(fields))


def add_step(root, campaign_id, template, *, exercise=False):
    (root / "campaigns" / f"{campaign_id}.toml").write_text(
        f'window = "always"\n[campaign]\nname = "{campaign_id}"\n[entry]\non = "confirm"\n'
        f'[[steps]]\nid = "one"\ntemplate = "{template}"\nsubject = "Hello"\npreheader = "P"\n'
        f'delay = "0"\nexercise = {"true" if exercise else "false"}\n', encoding="utf-8")


def write(root, relative, text):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the same email as an HTML one ----------------------------------------------------------
def test_a_markdown_email_renders_exactly_as_its_html_twin(project, make_drip):
    drip = make_drip(base_env(project))
    markdown, html = drip.campaigns.get("md-walk"), drip.campaigns.get("html-walk")
    for sample in SAMPLES:
        for is_test in (False, True):
            got = compose(drip, sample.subscriber, markdown, markdown.steps[0], now=NOW, is_test=is_test)
            twin = compose(drip, sample.subscriber, html, html.steps[0], now=NOW, is_test=is_test)
            assert (got.subject, got.html, got.text) == (twin.subject, twin.html, twin.text)
    message = compose(drip, SAMPLES[1].subscriber, markdown, markdown.steps[0], now=NOW)
    # The layout, the Markdown made HTML, the building blocks, the plain-text part.
    assert 'class="container"' in message.html and "<h2" in message.html
    assert "easy</em> walking" in message.html and "*easy* walking" in message.text
    assert 'class="safety"' in message.html and 'class="tip"' in message.html
    assert f'class="button" href="{drip.settings.coach.booking_url}"' in message.html
    assert "Keep the route flat" in message.html          # the pregnant sample's branch
    assert "Stop signs" in message.text and "Disclaimer" in message.text
    assert "- Let your arms swing." in message.text and "[Book a call](" in message.text


def test_markdown_steps_pass_drip_check_and_the_check_reads_them_like_html(project, make_drip):
    drip = make_drip(base_env(project))
    problems = [p for p in check_project(drip)
                if any(mine in p.file for mine in ("emails/md/", "md-walk", "html-walk"))]
    assert problems == []
    # The same exercise email without its safety block fails, naming the .md file.
    path = project / WALK
    path.write_text(path.read_text(encoding="utf-8").replace("{{ m.safety_block() }}", ""),
                    encoding="utf-8")
    found = [p for p in check_project(make_drip(base_env(project))) if p.rule == "safety-block"]
    assert [p.file.endswith("emails/md/walk.md") for p in found] == [True]
    assert "m.safety_block()" in found[0].message


def test_a_safety_block_written_by_hand_in_markdown_is_not_enough(project, make_drip):
    path = project / WALK
    path.write_text(path.read_text(encoding="utf-8").replace(
        "{{ m.safety_block() }}", "### Stop signs\n\nStop if it hurts.\n\n**Disclaimer:** general advice."),
        encoding="utf-8")
    found = [p for p in check_project(make_drip(base_env(project))) if p.rule == "safety-block"]
    assert len(found) == 1 and found[0].file.endswith("walk.md")


# --- values stay text, tags stay Jinja --------------------------------------------------------
@pytest.mark.parametrize("name", ["*Ana*", "[x](http://evil.example)", "<b>Bo</b>", "# Heading",
                                  "`code`", "_under_"])
def test_a_persons_value_is_never_read_as_markdown(project, make_drip, name):
    write(project, "templates/emails/md/hello.md", "Hi **{{ subscriber.name }}**, welcome.\n\n"
                                                   "- {{ subscriber.name }}\n")
    add_step(project, "hello", "md/hello")
    drip = make_drip(base_env(project))
    campaign = drip.campaigns.get("hello")
    message = compose(drip, person(name=name), campaign, campaign.steps[0], now=NOW)
    body = message.html.split('class="content"')[1].split('class="footer"')[0]
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in body
    assert "evil.example\"" not in body and "<b>Bo" not in body and "<h1" not in body
    assert "<code" not in body and "<em" not in body


def test_jinja_tags_pass_through_markdown_untouched():
    source = ("# Title {{ a|upper }}\n\n"
              "Text *with* {{ b }} and [a link]({{ url }}?x=1&y=2 \"{{ title }}\").\n\n"
              "{% if c %}\n\n- item {{ d }}\n- `{{ e }}`\n\n{% endif %}\n"
              "{# a note *not* Markdown #}\n"
              "{% set f = {'k': '}}',\n  'j': 2} %}\n"
              "{% raw %}{{ literal }} *x*{% endraw %}\n")
    html = to_template(source).html
    for tag in ["{{ a|upper }}", "{{ b }}", "{{ url }}", "{{ title }}", "{% if c %}", "{{ d }}",
                "{{ e }}", "{% endif %}", "{# a note *not* Markdown #}",
                "{% set f = {'k': '}}',\n  'j': 2} %}", "{% raw %}{{ literal }} *x*{% endraw %}"]:
        assert tag in html, tag
    assert "<h1>Title {{ a|upper }}</h1>" in html and "<em>with</em>" in html
    assert '<a href="{{ url }}?x=1&amp;y=2" title="{{ title }}">a link</a>' in html
    assert "\n{% if c %}\n<ul>" in html and "<code>{{ e }}</code>" in html
    assert "<p>{% if" not in html and "<p>{# a note" not in html


def test_a_line_of_building_blocks_stands_alone_but_a_lone_value_stays_text():
    html = to_template("Intro text\n{{ m.safety_block() }}\nSo long,\n{{ coach.name }}\n").html
    assert "<p>Intro text</p>\n{{ m.safety_block() }}\n<p>So long,\n{{ coach.name }}</p>" in html


# --- errors at the coach's file and line --------------------------------------------------------
@pytest.mark.parametrize("line,expected", [
    ("- one {{ subscriber.firstname }}", "has no attribute 'firstname'; did you mean first_name?"),
    ("- one {{ m.greeting(subscriber.firstname) }}", "did you mean first_name?"),
    ("- one {{ first_name }}", "'first_name' is undefined; did you mean subscriber.first_name?"),
    ("- one {{ subscriber.name }", "unexpected '}'"),
])
def test_errors_name_the_markdown_file_and_its_line(project, make_drip, line, expected):
    path = project / WALK
    lines = path.read_text(encoding="utf-8").splitlines()
    number = lines.index("- Let your arms swing.") + 1
    lines[number - 1] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    drip = make_drip(base_env(project))
    campaign = drip.campaigns.get("md-walk")
    with pytest.raises(TemplateError) as caught:
        compose(drip, person(), campaign, campaign.steps[0], now=NOW)
    assert str(caught.value).startswith(f"{path}, line {number}: ")
    assert expected in str(caught.value)


def test_an_unclosed_block_is_reported_at_a_line_of_the_markdown(project, make_drip):
    path = project / WALK
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{% endif %}\n", ""), encoding="utf-8")
    found = [p for p in check_project(make_drip(base_env(project))) if p.file.endswith("walk.md")]
    assert [(p.rule, p.line) for p in found] == [("template-syntax", len(text.splitlines()) - 1)]
    assert "endif" in found[0].message


def test_drip_check_json_gives_the_markdown_line_of_a_typo(project, monkeypatch):
    path = project / WALK
    text = path.read_text(encoding="utf-8").replace("Let your arms swing.",
                                                    "Let your arms swing, {{ subscriber.firstname }}.")
    path.write_text(text, encoding="utf-8")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["check", "--json"], env=base_env(project))
    assert result.exit_code == 1
    found = [p for p in json.loads(result.stdout) if p["rule"] == "template-render"]
    line = text.splitlines().index("- Let your arms swing, {{ subscriber.firstname }}.") + 1
    assert {(p["file"], p["line"]) for p in found} == {(WALK, line)}
    assert all("did you mean first_name?" in p["message"] for p in found)


def test_a_typo_passed_to_a_macro_in_html_points_at_the_body_not_the_macros(project, make_drip):
    body = write(project, "templates/emails/md/plain.html",
                 '{% import "emails/_macros.html" as m %}\n<p>Hello.</p>\n'
                 "{{ m.greeting(subscriber.firstname) }}\n")
    add_step(project, "plain", "md/plain")
    drip = make_drip(base_env(project))
    campaign = drip.campaigns.get("plain")
    with pytest.raises(TemplateError, match=rf"^{body}, line 3: .*did you mean first_name\?"):
        compose(drip, person(), campaign, campaign.steps[0], now=NOW)


# --- which file is the body ---------------------------------------------------------------------
def test_an_html_and_a_markdown_body_of_the_same_name_is_an_error_naming_both(project, make_drip):
    html = write(project, "templates/emails/md/walk.html", "<p>Hi</p>\n")
    with pytest.raises(CampaignError) as caught:
        from sender.campaigns import load_campaigns
        load_campaigns(project / "campaigns", templates_dir=project / "templates")
    message = str(caught.value)
    assert "md-walk.toml: steps[1].template" in message
    assert str(html) in message and str(html.with_suffix(".md")) in message
    problems = [p for p in check_project(make_drip(base_env(project))) if "md-walk" in p.file]
    assert problems and all("both" in p.message for p in problems)


def test_a_broadcast_body_comes_from_the_broadcasts_folder_with_true_lines(project, make_drip):
    add_step(project, "news", "@broadcasts/2026-03-10-bellevue-workshop")
    drip = make_drip(base_env(project))
    campaign = drip.campaigns.get("news")
    message = compose(drip, person(), campaign, campaign.steps[0], now=NOW)
    assert "Join me in Bellevue" in message.html and "subject =" not in message.html
    assert "Save a place" in message.html and "+++" not in message.text
    path = project / "broadcasts" / "2026-03-10-bellevue-workshop.md"
    text = path.read_text(encoding="utf-8").replace("Hi {{ subscriber.first_name",
                                                    "Hi {{ subscriber.frist_name")
    path.write_text(text, encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "frist_name" in t)
    drip = make_drip(base_env(project))
    with pytest.raises(TemplateError, match=rf"^{path}, line {line}: .*did you mean first_name\?"):
        compose(drip, person(), campaign, campaign.steps[0], now=NOW)


def test_a_broadcast_with_broken_front_matter_is_a_template_error_at_its_line(project, make_drip):
    path = write(project, "broadcasts/bad.md", '+++\nsubject = "x"\nwhen = Tue\n+++\nHi\n')
    add_step(project, "bad", "@broadcasts/bad")
    drip = make_drip(base_env(project))
    campaign = drip.campaigns.get("bad")
    with pytest.raises(TemplateError, match=rf"^{path}, line 3: .*not valid TOML"):
        compose(drip, person(), campaign, campaign.steps[0], now=NOW)


def test_a_missing_broadcast_body_is_a_campaign_problem(project):
    add_step(project, "gone", "@broadcasts/nope")
    from sender.campaigns import load_campaigns
    with pytest.raises(CampaignError, match=r"gone.toml: steps\[1\].template: '@broadcasts/nope': no file"):
        load_campaigns(project / "campaigns", templates_dir=project / "templates")
