"""The template reference is read from the code (``sender/template_reference.py``): every
name a template can use has a description, the README shows the current text, and
``drip templates`` prints it for the project's own templates."""

from __future__ import annotations

import re

import jinja2
from click.testing import CliRunner

from sender import template_reference
from sender.cli import cli
from sender.compose import template_context
from sender.samples import SAMPLES
from tests.support import REPO, at, base_env

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_section_is_the_generated_reference():
    block = re.search(r"<!-- template-reference:start -->\n(.*?)<!-- template-reference:end -->",
                      README, re.S).group(1)
    assert block == template_reference.reference(REPO / "templates"), \
        "run: .venv/bin/python -m sender.template_reference README.md"


def test_every_name_a_template_can_use_is_described():
    drip = template_reference.example_drip(REPO / "templates")
    assert template_reference.missing(drip) == []


def test_the_reference_lists_what_compose_really_gives_a_template(shipped, make_drip):
    drip = make_drip(base_env(shipped))
    text = template_reference.reference(shipped / "templates", drip)
    campaign = drip.campaigns.confirmation
    context = template_context(drip, SAMPLES[0].subscriber, campaign, campaign.steps[0],
                               now=at("2026-03-02T18:00Z"))
    for key, value in context.items():
        assert f"- `{key}`:" in text
        if isinstance(value, dict) and key != "subscriber":
            assert all(f"- `{key}.{inner}`:" in text for inner in value)
    for name in ("email", "name", "first_name", "fields", "tags"):
        assert f"- `subscriber.{name}`:" in text
    assert "- `unsubscribe_url`: her one-click unsubscribe link (the layout shows it) (per person)" in text
    for usage in ("{{ m.button(url, label) }}", "{{ m.safety_block() }}", "{{ m.figure(name) }}",
                  "{% call m.callout(title='') %}...{% endcall %}"):
        assert f"- `{usage}`:" in text
    assert "`emails/_layout.html`: no blocks; the body goes in at `{{ body }}`" in text


def test_a_filter_or_global_added_without_a_description_is_caught(shipped, make_drip):
    drip = make_drip(base_env(shipped))
    drip.templates.filters["shout"] = str.upper
    drip.templates.globals["weather"] = lambda: "sunny"
    assert template_reference.missing(drip) == ["weather", "filter shout"]
    text = template_reference.reference(shipped / "templates", drip)
    assert "- `shout`: (not described)" in text and "- `weather`: (not described)" in text


def test_a_macro_is_listed_with_its_arguments_and_comment(tmp_path):
    source = ('{#- Says hello to NAME. -#}\n{% macro hello(name, loud=False) -%}<p>{{ name }}</p>'
              '{%- endmacro %}\n{% macro boxed() %}<div>{{ caller() }}</div>{% endmacro %}\n')
    assert template_reference.macros(source) == [
        ("hello", ["name", "loud=False"], False, "Says hello to NAME."),
        ("boxed", [], True, "")]


def test_drip_templates_prints_the_reference_for_this_projects_templates(shipped, monkeypatch):
    macros = shipped / "templates" / "emails" / "_macros.html"
    macros.write_text(macros.read_text(encoding="utf-8") + "\n{#- Waves at NAME. -#}\n"
                      "{% macro wave(name) %}<p>{{ name }}</p>{% endmacro %}\n", encoding="utf-8")
    monkeypatch.chdir(shipped)
    result = CliRunner().invoke(cli, ["templates"], env=base_env(shipped))
    assert result.exit_code == 0, result.output
    assert result.output == template_reference.reference(shipped / "templates")
    assert "- `{{ m.wave(name) }}`: Waves at NAME." in result.output


def test_drip_templates_without_a_templates_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["templates"], env={"DRIP_TEMPLATES_DIR": str(tmp_path / "nope")})
    assert result.exit_code == 1
    assert "templates folder" in result.output and "Traceback" not in result.output


def test_jinja_builtins_are_listed_by_name_not_described():
    text = template_reference.reference(REPO / "templates")
    assert all(name in text for name in jinja2.filters.FILTERS)
