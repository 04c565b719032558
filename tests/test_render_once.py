"""Each step is rendered once and filled in per person (``step_render``); the bytes sent are
the bytes of the straightforward pipeline, written out here as the reference: Jinja, then
css_inline, then markdownify, then the ``email`` package, for one person at a time.

The shipped campaigns are compared for every sample subscriber, as a real send and as a test
send; hostile names and field values through a template that puts them everywhere (text,
attributes, a link whose text is its address, a table, the subject); templates that cannot
be rendered once go the per-person way, and say why."""

from __future__ import annotations

import os
import re
from dataclasses import asdict
from datetime import timedelta
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import css_inline
import jinja2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdownify import markdownify
from markupsafe import Markup

from sender import skeleton, step_render
from sender.compose import compose
from sender.errors import TemplateError
from sender.guide import attaches_guide
from sender.headers import fold_address, fold_text, header_problem
from sender.helpers import template_globals
from sender.identity import feedback_id, list_id, stream_of
from sender.message import MIME_POLICY
from sender.models import Subscriber
from sender.render import load_environment
from sender.samples import SAMPLES
from sender.tokens import CONFIRM, UNSUBSCRIBE
from tests.support import at, base_env

NOW = at("2026-03-02T18:00Z")


# --- the reference: one person at a time, the plain way --------------------------------------
def reference_context(drip, subscriber, campaign, step, *, now, is_test):
    settings = drip.settings
    context = {
        "subscriber": {"email": subscriber.email, "name": subscriber.name,
                       "first_name": subscriber.first_name, "fields": dict(subscriber.fields),
                       "tags": list(subscriber.tags)},
        "coach": asdict(settings.coach),
        "guide_url": settings.guide_url,
        "unsubscribe_url": f"{settings.base_url}/unsubscribe/"
                           f"{drip.signer.make(UNSUBSCRIBE, subscriber.uid)}",
        "postal_address": settings.postal_address,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "step": {"id": step.id, "number": step.number, "total": len(campaign.steps)},
        "is_test": is_test,
    }
    if campaign.entry_on == "signup":
        context["confirm_url"] = (f"{settings.base_url}/confirm/"
                                  f"{drip.signer.make(CONFIRM, subscriber.uid, now=now)}")
    text = drip.templates.overlay(autoescape=False)
    context["subject"] = text.from_string(step.subject).render(context).strip()
    context["preheader"] = text.from_string(step.preheader).render(context).strip()
    return context


def reference_text(fragment):
    fragment = re.sub(r"<table\b[^>]*\brole=\"presentation\"[^>]*>.*?</table>",
                      lambda m: re.sub(r"</?(?:table|thead|tbody|tr|td|th)\b[^>]*>", "\n",
                                       m.group(0), flags=re.I),
                      str(fragment), flags=re.S | re.I)
    text = markdownify(fragment, heading_style="ATX", bullets="-", strip=["img"])
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def reference_body_name(drip, step):
    """emails/T.html, or emails/T.md for a body written in Markdown (which the loader turns
    into an HTML template when it reads it: Jinja runs on that exactly as on an HTML body)."""
    markdown = f"emails/{step.template}.md"
    return markdown if (drip.settings.templates_dir / markdown).is_file() else f"emails/{step.template}.html"


def reference_parts(drip, subscriber, campaign, step, *, now, is_test=False):
    env = drip.templates
    context = reference_context(drip, subscriber, campaign, step, now=now, is_test=is_test)
    body = env.get_template(reference_body_name(drip, step)).render(context)
    page = env.get_template("emails/_layout.html").render({**context, "body": Markup(body)})
    html = css_inline.CSSInliner(keep_at_rules=True).inline(page)
    text = env.get_template("emails/_layout.txt").render(
        {**context, "body": reference_text(body)}).rstrip() + "\n"
    return context, html, text


def reference_bytes(drip, subscriber, campaign, step, *, now, is_test=False, message_id):
    settings = drip.settings
    context, html, text = reference_parts(drip, subscriber, campaign, step, now=now,
                                          is_test=is_test)
    local, _, domain = subscriber.email.rpartition("@")
    msg = EmailMessage(policy=MIME_POLICY)
    msg["From"] = fold_address("From", settings.sender)
    msg["To"] = fold_address("To", Address(subscriber.name or "", local, domain))
    if settings.reply_to and settings.reply_to != settings.sender:
        msg["Reply-To"] = fold_address("Reply-To", settings.reply_to)
    subject = f"[TEST] {context['subject']}" if is_test else context["subject"]
    msg["Subject"] = fold_text("Subject", subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = list_id(campaign, settings.sender)
    msg["Feedback-ID"] = feedback_id(campaign, step, stream_of(campaign, step), settings.sender)
    msg.set_content(text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    assert not (settings.guide_attach and attaches_guide(campaign, step))  # not compared here
    return msg.as_bytes()


def named_boundaries(raw):
    for number, boundary in enumerate(dict.fromkeys(re.findall(rb'boundary="([^"]+)"', raw)), 1):
        raw = raw.replace(boundary, b"BOUNDARY-%d" % number)
    return raw


def assert_reference(drip, subscriber, campaign, step, *, now=NOW, is_test=False):
    message = compose(drip, subscriber, campaign, step, now=now, delivery_id=3, is_test=is_test)
    expected = reference_bytes(drip, subscriber, campaign, step, now=now, is_test=is_test,
                               message_id=message.message_id)
    got = named_boundaries(message.as_bytes())
    if got != named_boundaries(expected):
        _, html, text = reference_parts(drip, subscriber, campaign, step, now=now, is_test=is_test)
        where = (f"{campaign.id}/{step.id} for {subscriber.name!r} {subscriber.fields!r}"
                 f"{' (test send)' if is_test else ''}")
        assert message.text == text, f"{where}: the text part differs"
        assert message.html == html, f"{where}: the HTML part differs"
        assert got == named_boundaries(expected), f"{where}: the MIME bytes differ"
    return message


def person(name="Ana Souza", email="ana@example.com", uid="uid-ana", tags=(), **fields):
    return Subscriber(id=1, uid=uid, email=email, name=name, timezone=None, status="active",
                      tags=list(tags), fields=dict(fields))


# --- the shipped campaigns ---------------------------------------------------------------------
def test_every_shipped_step_renders_once_to_the_reference_bytes(shipped, make_drip):
    drip = make_drip(base_env(shipped))
    steps = [(c, s) for c in drip.campaigns for s in c.steps]
    assert len(steps) >= 11
    for campaign, step in steps:
        for sample in SAMPLES:
            for is_test in (False, True):
                assert_reference(drip, sample.subscriber, campaign, step, is_test=is_test)
    # The confirmation link carries the time it was made: another moment, another link.
    confirmation = drip.campaigns.confirmation
    later = assert_reference(drip, SAMPLES[0].subscriber, confirmation, confirmation.steps[0],
                             now=NOW + timedelta(hours=1))
    assert later.html != compose(drip, SAMPLES[0].subscriber, confirmation, confirmation.steps[0],
                                 now=NOW).html
    stats = step_render.stats(drip.templates)
    assert stats.fell_back == {}, stats.fell_back
    assert {f"emails/{s.template}.html" for _, s in steps} <= stats.once
    assert stats.emails_per_person == 0 and stats.emails_once >= len(steps) * len(SAMPLES) * 2


def test_subject_and_preheader_are_compiled_once_not_per_email(shipped, make_drip, monkeypatch):
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    compose(drip, SAMPLES[0].subscriber, campaign, campaign.steps[0], now=NOW)   # warm
    compiled = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *a, **k: compiled.append(a) or real(self, *a, **k))
    for sample in SAMPLES * 5:
        compose(drip, sample.subscriber, campaign, campaign.steps[0], now=NOW)
    assert compiled == []


def test_a_body_changed_after_composing_is_encoded_anew(shipped, make_drip):
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    message = compose(drip, SAMPLES[0].subscriber, campaign, campaign.steps[0], now=NOW)
    message.html = message.html.replace("Welcome to week one", "Welcome to week 1 (edited)")
    message.text += "P.S. edited\n"
    raw = message.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert "week 1 (edited)" in parsed.get_body(("html",)).get_content()
    assert parsed.get_body(("plain",)).get_content().endswith("P.S. edited\r\n")
    assert named_boundaries(raw) == named_boundaries(message.to_mime().as_bytes())


def test_the_bodies_are_encoded_only_for_a_provider_that_sends_mime(shipped, make_drip):
    """An API provider takes the HTML and the text as they are: composing for it encodes no
    body. The MIME bytes, when asked for, encode each body once, to the reference bytes."""
    from sender.providers.postmark.sending import PostmarkProvider

    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    subscriber, step = SAMPLES[0].subscriber, campaign.steps[0]
    message = compose(drip, subscriber, campaign, step, now=NOW, delivery_id=3)
    item = PostmarkProvider(http=None).payload(message)
    assert (item["HtmlBody"], item["TextBody"]) == (message.html, message.text)
    assert message.encoded_bodies.done == {}
    expected = reference_bytes(drip, subscriber, campaign, step, now=NOW, is_test=False,
                               message_id=message.message_id)
    assert named_boundaries(message.as_bytes()) == named_boundaries(expected)
    assert sorted(message.encoded_bodies.done) == [0, 1]
    # A body changed after composing is encoded anew, and the stale one is never encoded.
    again = compose(drip, subscriber, campaign, step, now=NOW, delivery_id=4)
    again.text += "P.S. edited\n"
    assert b"P.S. edited" in again.as_bytes()
    assert sorted(again.encoded_bodies.done) == [0]


# --- hostile names and values, everywhere a value can land --------------------------------------
PROBE_CAMPAIGN = """\
window = "always"

[campaign]
name = "Probe"

[entry]
on = "confirm"

[[steps]]
id = "contexts"
template = "probe/contexts"
subject = "A note for {{ subscriber.first_name or 'you' }}"
preheader = "{{ subscriber.name }}, this one is yours"
delay = "0"
"""

PROBE_TEMPLATE = """\
{% import "emails/_macros.html" as m %}
{%- set note = subscriber.fields.get("note", "none") %}
{%- set label = subscriber.fields.get("label", "Label") %}
{%- set site = subscriber.fields.get("site", "https://coach.example.com") %}
{{ m.greeting(subscriber.first_name) }}
<p>Dear {{ subscriber.name }}, your note: {{ note }}.</p>
<h2>{{ label }}</h2>
<ul>
<li>{{ subscriber.first_name }}</li>
<li><strong>{{ subscriber.name }}</strong> and <em>{{ note }}</em></li>
</ul>
<p><a href="https://coach.example.com/p/{{ subscriber.fields.get('slug', 'none') }}"
 title="{{ subscriber.name }}">{{ label }}</a></p>
<p><a href="{{ site }}">{{ site }}</a></p>
<table role="presentation"><tr><td>{{ subscriber.first_name }}</td><td>{{ note }}</td></tr></table>
<p>{{ subscriber.email }} ({{ subscriber.tags|join(", ") }})</p>
{{ m.button(unsubscribe_url, "Leave") }}
<blockquote>{{ subscriber.name|title }}</blockquote>
{% if subscriber.fields.get("stage") == "pregnant" %}<p>Expecting, {{ subscriber.first_name|upper }}!</p>
{%- elif subscriber.tags %}<p>Tagged.</p>{% else %}<p>Neither.</p>{% endif %}
"""


@pytest.fixture
def probe(shipped, make_drip):
    (shipped / "campaigns" / "probe.toml").write_text(PROBE_CAMPAIGN, encoding="utf-8")
    folder = shipped / "templates" / "emails" / "probe"
    folder.mkdir()
    (folder / "contexts.html").write_text(PROBE_TEMPLATE, encoding="utf-8")
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("probe")
    return drip, campaign, campaign.steps[0]


HOSTILE = [
    "Zoë Ångström-Müller", "Tom & Jerry", "<b>Bold</b>", "O'Brien", "李小龍", '"Quoted" Name',
    "_under_score_", "*stars*", "back\\slash \\_ \\*", "a&amp;b &lt;c&gt; &#39;", "💪 Strong Mama",
    "Maximiliane Wilhelmina Theodora von Hohenzollern-Sigmaringen-Württemberg und Teck",
    "x" * 90, "https://coach.example.com/a_b*c", "[link](https://evil.example)", "# not a heading",
    "1. not a list", "- dash", "`code`", "<!-- comment -->", "a]b[c", "Renée\u200bZ", "=?utf-8?q?x?",
]


def test_hostile_names_and_values_render_once_and_match_the_reference(probe):
    drip, campaign, step = probe
    for number, value in enumerate(HOSTILE):
        name = value if header_problem(value) is None else "Plain Name"
        subscriber = person(name=name, uid=f"uid-{number}", tags=[value, "second tag"],
                            note=value, label=value, slug=value, site=value,
                            stage="pregnant" if number % 3 == 0 else "postpartum")
        assert_reference(drip, subscriber, campaign, step)
    stats = step_render.stats(drip.templates)
    assert "emails/probe/contexts.html" in stats.once, stats.fell_back
    assert stats.emails_per_person == 0, stats.person_reasons


def test_values_that_whitespace_or_markup_would_change_go_the_per_person_way(probe):
    drip, campaign, step = probe
    awkward = [" leading", "trailing ", "two  spaces", "tab\there", "new\nline", "cr\rhere",
               "nul\x00here", "nbsp\xa0here", "", "\u2028sep"]
    for number, value in enumerate(awkward):
        assert_reference(drip, person(uid=f"uid-w{number}", note=value, label=value), campaign,
                         step)
    stats = step_render.stats(drip.templates)
    assert stats.emails_per_person == len(awkward)


NAMES = st.one_of(st.sampled_from(HOSTILE), st.text(st.characters(blacklist_categories=("Cs",)),
                                                     max_size=40)).filter(
    lambda s: header_problem(s) is None)
VALUES = st.one_of(st.sampled_from(HOSTILE + ["", " x", "a  b"]),
                   st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=NAMES, note=VALUES, label=VALUES, site=VALUES, tags=st.lists(VALUES, max_size=3),
       pregnant=st.booleans())
@example(name="Zoë Ångström-Müller", note="Tom & Jerry", label="<b>Bold</b>", site="O'Brien",
         tags=["李小龍"], pregnant=True)
def test_any_name_and_field_values_give_the_reference_bytes(probe, name, note, label, site, tags,
                                                              pregnant):
    drip, campaign, step = probe
    fields = {"note": note, "label": label, "site": site, "slug": note}
    if pregnant:
        fields["stage"] = "pregnant"
    assert_reference(drip, person(name=name, tags=tags, **fields), campaign, step)


# --- templates that cannot be rendered once ------------------------------------------------------
EXTRA_CAMPAIGN = """\
window = "always"

[campaign]
name = "Extras"

[entry]
on = "confirm"
"""

EXTRA_TEMPLATES = {
    # per-person values in a loop, a helper call, a filter we do not reproduce, an include
    "loop": '<p>Tags:</p>{% for tag in subscriber.tags %}<p>{{ tag }}</p>{% endfor %}',
    "helper": '<p>{{ has_image(subscriber.name) }} {{ subscriber.name }}</p>',
    "filter": '<p>{{ subscriber.fields|dictsort|map("last")|join(", ") }}</p>',
    "include": '{% include "emails/probe/static.html" %}<p>{{ subscriber.name }}</p>',
    "peek": '<p>Hi {{ peek() }}</p>',
    "with-context": '{% import "emails/_macros.html" as m with context %}'
                    '{{ m.greeting(subscriber.first_name) }}',
    # and these render once, but the value lands where it would not be carried as it is
    "style": '<p style="color: {{ subscriber.fields.get("colour", "red") }}">{{ subscriber.name }}</p>',
    "comment": '<p>Hi</p><!-- for {{ subscriber.name }} -->',
    "code": '<p>Your id: <code>{{ subscriber.email }}</code></p>',
    "lines": '<ul><li><a href="https://coach.example.com/q">{{ subscriber.name }}<br>again</a></li></ul>',
    # these can: a branch on a value, a filter we reproduce, a set variable
    "branch": '{% set stage = subscriber.fields.get("stage") %}'
              '{% if stage == "pregnant" %}<p>Expecting</p>{% elif subscriber.tags %}<p>tagged</p>'
              '{% else %}<p>{{ subscriber.first_name|upper }} {{ stage }}</p>{% endif %}',
}


def test_templates_that_cannot_render_once_fall_back_correctly_and_are_counted(shipped,
                                                                              make_drip):
    folder = shipped / "templates" / "emails" / "probe"
    folder.mkdir()
    (folder / "static.html").write_text("<p>static</p>\n", encoding="utf-8")
    steps = ""
    for key, source in EXTRA_TEMPLATES.items():
        (folder / f"{key}.html").write_text(source + "\n", encoding="utf-8")
        steps += (f'\n[[steps]]\nid = "{key}"\ntemplate = "probe/{key}"\nsubject = "S {key}"\n'
                  f'preheader = "P"\ndelay = "0"\n')
    (shipped / "campaigns" / "extras.toml").write_text(EXTRA_CAMPAIGN + steps, encoding="utf-8")
    drip = make_drip(base_env(shipped))
    # A helper that reads the context itself: rendering once, it finds no per-person value.
    drip.templates.globals["peek"] = jinja2.pass_context(
        lambda context: context.get("subscriber", {}).get("name", "nobody"))
    campaign = drip.campaigns.get("extras")
    people = [person(), person(name="Tom & Jerry", uid="u2", tags=["a", "<b>"], stage="pregnant"),
              person(name="", uid="u3", stage="postpartum", note="x_y")]
    for step in campaign.steps:
        for subscriber in people:
            assert_reference(drip, subscriber, campaign, step)
    stats = step_render.stats(drip.templates)
    fell_back = {name.removeprefix("emails/probe/").replace(".html", ""): why
                 for name, why in stats.fell_back.items()}
    branch = " (branch ())"
    assert set(fell_back) == {"loop", "helper", "filter", "include", "with-context",
                              *(f"{name}{branch}" for name in ("peek", "style", "comment", "code", "lines"))}
    assert "loop" in fell_back["loop"] and "include" in fell_back["include"]
    assert "has_image" in fell_back["helper"] and "map" in fell_back["filter"]
    assert "with the context" in fell_back["with-context"]
    assert "subscriber was read" in fell_back[f"peek{branch}"]
    assert "style attribute" in fell_back[f"style{branch}"]
    assert "comment" in fell_back[f"comment{branch}"] and "code" in fell_back[f"code{branch}"]
    assert "spans lines" in fell_back[f"lines{branch}"]
    assert "emails/probe/branch.html" in stats.once
    # Five templates and five branches per person; in "branch", the person with no name
    # (first_name "") and the one with no stage ({{ stage }} is None) go per person too.
    assert stats.person_reasons == {"the template cannot be rendered once": 5 * len(people),
                                    "this branch cannot be rendered once": 5 * len(people),
                                    "a value is not plain text": 2}


# --- what the cache is keyed on: the environment (hot reload) and the test flag -----------------
def test_a_reloaded_environment_renders_the_edited_template(shipped, make_drip):
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    step = campaign.steps[0]
    ana = SAMPLES[0].subscriber
    def reload():
        return load_environment(shipped / "templates",
                                globals=template_globals(drip.settings, lambda: drip.campaigns))[0]

    drip.templates = reload()
    before = assert_reference(drip, ana, campaign, step)
    path = shipped / "templates" / "emails" / f"{step.template}.html"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "Welcome to week one", "Welcome, {{ subscriber.first_name }}, to week one"), encoding="utf-8")
    # The frozen environment keeps what it compiled, edit or no edit...
    assert compose(drip, ana, campaign, step, now=NOW).html == before.html
    # ...and the next one (what the reloader swaps in) renders the edit.
    drip.templates = reload()
    after = assert_reference(drip, ana, campaign, step)
    assert "Welcome, Ana, to week one" in after.html and "Welcome, Ana, to week one" in after.text
    test_send = assert_reference(drip, ana, campaign, step, is_test=True)
    assert "TEST SEND" in test_send.html and "TEST SEND" not in after.html


def test_an_unreloaded_environment_sees_an_edit_on_disk_as_today(shipped, make_drip):
    """The CLI's environment reads a template again when its file changes; so does the cache."""
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    step = campaign.steps[1]
    ana = SAMPLES[0].subscriber
    assert_reference(drip, ana, campaign, step)
    path = shipped / "templates" / "emails" / f"{step.template}.html"
    path.write_text("<p>Replaced for {{ subscriber.name }}.</p>\n", encoding="utf-8")
    stamp = path.stat().st_mtime + 5     # a clear change of time, whatever the clock's grain
    os.utime(path, (stamp, stamp))
    message = assert_reference(drip, ana, campaign, step)
    assert "Replaced for Ana Souza." in message.text
    # An imported file changed is seen too (here the macros every body imports).
    step = campaign.steps[2]
    assert_reference(drip, ana, campaign, step)
    macros = shipped / "templates" / "emails" / "_macros.html"
    macros.write_text(macros.read_text(encoding="utf-8").replace("<p>Hi ", "<p>Hello again, "),
                      encoding="utf-8")
    os.utime(macros, (stamp, stamp))
    message = assert_reference(drip, ana, campaign, step)
    assert message.text.startswith("Hello again, Ana,")


def test_a_batch_renders_from_one_version_of_its_templates(shipped, make_drip):
    """A send run's batch renders every email from the templates as they were when its first
    email of that step was rendered, and looks at their files that once rather than for every
    email (about a tenth of `drip send`'s CPU); an edit saved meanwhile shows from the next
    batch on, as it does between the worker's runs."""
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    step = campaign.steps[1]
    ana, bea = SAMPLES[0].subscriber, SAMPLES[3].subscriber
    path = shipped / "templates" / "emails" / f"{step.template}.html"
    with step_render.one_version(drip.templates):
        first = assert_reference(drip, ana, campaign, step)
        path.write_text("<p>Replaced for {{ subscriber.name }}.</p>\n", encoding="utf-8")
        stamp = path.stat().st_mtime + 5
        os.utime(path, (stamp, stamp))
        same = compose(drip, bea, campaign, step, now=NOW)
    assert "Replaced" not in first.text and "Replaced" not in same.text
    assert same.html.count("<p") == first.html.count("<p")
    after = assert_reference(drip, bea, campaign, step)
    assert f"Replaced for {bea.name}." in after.text


def test_the_steps_rendered_once_are_bounded(shipped, make_drip, monkeypatch):
    monkeypatch.setattr(step_render, "VARIANTS_KEPT", 2)
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("glute-progression")
    for step in campaign.steps[:4]:
        for sample in SAMPLES:
            assert_reference(drip, sample.subscriber, campaign, step)
    kept = drip.templates._drip_render_once.steps.values()
    assert sum(len(step.variants) for step in kept) <= 2
    assert step_render.stats(drip.templates).emails_per_person == 0


def test_the_plain_check_is_the_renderers_contract():
    """A value goes the render-once way only if every stage would carry it unchanged."""
    assert skeleton.plain("Zoë Ångström-Müller") and skeleton.plain("<b>Bold</b>")
    for value in (" x", "x ", "a  b", "a\tb", "a\nb", "", "a\xa0b", "a\x00b", 5, None,
                  Markup("<b>x</b>")):
        assert not skeleton.plain(value), value



# Markup whose reading depends on the value itself: an unquoted attribute ends at a space,
# and text right after '<' opens a tag when it starts with a letter. These must give the
# reference bytes too (by rendering per person where the value decides the markup).
VALUE_DECIDES_MARKUP = {
    "unquoted": '<p><a href=https://x.example/{{ subscriber.name }}>go</a></p>\n',
    "unquoted_title": '<p><a title={{ subscriber.name }} href="https://x.example">go</a></p>\n',
    "unquoted_alt": '<p><img alt={{ subscriber.name }}></p>\n',
    "after_lt": '<p>Scores: 3 <{{ subscriber.name }} and more</p>\n',
    "after_lt_slash": '<p>a </{{ subscriber.name }} b</p>\n',
}


@pytest.mark.parametrize("key", sorted(VALUE_DECIDES_MARKUP))
def test_markup_that_the_value_decides_gives_the_reference_bytes(shipped, make_drip, key):
    (shipped / "campaigns" / "probe.toml").write_text(PROBE_CAMPAIGN, encoding="utf-8")
    folder = shipped / "templates" / "emails" / "probe"
    folder.mkdir()
    (folder / "contexts.html").write_text(VALUE_DECIDES_MARKUP[key], encoding="utf-8")
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("probe")
    for number, name in enumerate(["Plain Name", "Ana", "5 points", "Zoë Å"]):
        assert_reference(drip, person(name=name, uid=f"uid-{number}"), campaign,
                         campaign.steps[0])


def test_markup_the_html_parser_rejects_is_a_template_error(shipped, make_drip):
    """A template that becomes markup the parser under markdownify refuses, for one person's
    value: that email waits with a template error naming the file, nothing crashes."""
    (shipped / "campaigns" / "probe.toml").write_text(PROBE_CAMPAIGN, encoding="utf-8")
    folder = shipped / "templates" / "emails" / "probe"
    folder.mkdir()
    (folder / "contexts.html").write_text("<p>a <!{{ subscriber.name }}> b</p>\n", encoding="utf-8")
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("probe")
    with pytest.raises(TemplateError, match="emails/probe/contexts.html"):
        compose(drip, person(name="[x](y)"), campaign, campaign.steps[0], now=NOW)


# --- a body written in Markdown -------------------------------------------------------------------
PROBE_MARKDOWN = """\
{%- set note = subscriber.fields.get("note", "none") %}
{%- set label = subscriber.fields.get("label", "Label") %}
{%- set site = subscriber.fields.get("site", "https://coach.example.com") %}
{{ m.greeting(subscriber.first_name) }}

Dear {{ subscriber.name }}, your note: *{{ note }}*.

## {{ label }}

- {{ subscriber.first_name }}
- **{{ subscriber.name }}** and _{{ note }}_

[{{ label }}](https://coach.example.com/p/{{ subscriber.fields.get('slug', 'none') }} "{{ subscriber.name }}")

See <{{ site }}>, or [the site]({{ site }}).

> {{ subscriber.name|title }}

| Who | Note |
| --- | --- |
| {{ subscriber.first_name }} | {{ note }} |

{{ m.button(unsubscribe_url, "Leave") }}

{% call m.callout("For " ~ "you") %}
A box, with **bold** text.
{% endcall %}

{% if subscriber.fields.get("stage") == "pregnant" %}
Expecting, {{ subscriber.first_name|upper }}!
{% elif subscriber.tags %}
Tagged.
{% else %}
Neither.
{% endif %}
"""


@pytest.fixture
def markdown_probe(shipped, make_drip):
    (shipped / "campaigns" / "probe.toml").write_text(PROBE_CAMPAIGN, encoding="utf-8")
    folder = shipped / "templates" / "emails" / "probe"
    folder.mkdir()
    (folder / "contexts.md").write_text(PROBE_MARKDOWN, encoding="utf-8")
    drip = make_drip(base_env(shipped))
    campaign = drip.campaigns.get("probe")
    return drip, campaign, campaign.steps[0]


def test_a_markdown_step_renders_once_to_the_reference_bytes(markdown_probe):
    drip, campaign, step = markdown_probe
    for number, value in enumerate(HOSTILE):
        name = value if header_problem(value) is None else "Plain Name"
        subscriber = person(name=name, uid=f"uid-{number}", tags=[value, "second tag"],
                            note=value, label=value, slug=value, site=value,
                            stage="pregnant" if number % 3 == 0 else "postpartum")
        message = assert_reference(drip, subscriber, campaign, step)
        assert "<table" in message.html and 'class="tip"' in message.html
    stats = step_render.stats(drip.templates)
    assert "emails/probe/contexts.md" in stats.once, stats.fell_back
    assert stats.emails_per_person == 0, stats.person_reasons
    for sample in SAMPLES:      # (a sample without a name goes per person: an empty value)
        for is_test in (False, True):
            assert_reference(drip, sample.subscriber, campaign, step, is_test=is_test)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=NAMES, note=VALUES, label=VALUES, site=VALUES, tags=st.lists(VALUES, max_size=3),
       pregnant=st.booleans())
def test_any_values_in_a_markdown_step_give_the_reference_bytes(markdown_probe, name, note, label,
                                                                 site, tags, pregnant):
    drip, campaign, step = markdown_probe
    fields = {"note": note, "label": label, "site": site, "slug": note}
    if pregnant:
        fields["stage"] = "pregnant"
    assert_reference(drip, person(name=name, tags=tags, **fields), campaign, step)
