"""The graph of a campaign: its steps in order with what each waits for (its delay and what
it counts from: a date of hers, ``after = [...]``, and what it waits without one), the
condition it goes on (``when``), its subjects (A/B variants) and the goal that ends the
campaign (``exit``), and where a step sends her next (``then``: another campaign or the end,
``branches.py``). ``drip campaigns`` prints it as text or JSON; ``drip preview`` draws it as
a page per campaign (``page``).

The graph reads only the loaded campaign (``campaigns.py``) and the variant labels of
``step_rules.py``: what it shows is what the send path applies.
"""

from __future__ import annotations

from html import escape

from . import step_rules


def graph(campaign, default_window=None):
    """A campaign as plain data (the JSON of `drip campaigns`)."""
    steps, previous = [], None
    for step in campaign.steps:
        when = step_rules.condition_of(step)
        after = "enrolment" if step.after_enrolment or previous is None else previous
        anchors = list(getattr(step, "anchors", ()))
        fallback = getattr(step, "fallback_delay", None)
        steps.append({
            "id": step.id, "delay": str(step.delay), "after": after,
            "anchors": anchors, "delay_without_date": str(fallback) if fallback is not None else None,
            "wait": wait_words(step.delay, after, anchors, fallback),
            "when": str(when) if when is not None else None,
            "subject": step.subject, "template": step.template,
            "subjects": [{"variant": step_rules.variant_label(i), "subject": s}
                         for i, s in enumerate(getattr(step, "subjects", ()))],
            "then": getattr(step, "then", None),
            "then_when": (str(step.then_when) if getattr(step, "then_when", None) is not None
                          else None),
        })
        previous = step.id
    goal = step_rules.goal_of(campaign)
    return {"id": campaign.id, "name": campaign.name, "entry": campaign.entry_on,
            "tags": list(campaign.entry_tags), "window": str(campaign.window_or(default_window)),
            "exit": str(goal) if goal is not None else None, "steps": steps}


def wait_words(delay, after, anchors=(), fallback=None):
    """What a step waits for, in words: "+1w after enrolment", or for a step with a date anchor
    (``schedule.due_times``) "6w after birth_date, else due_date; 3d after enrolment without
    either" (``after``: what it counts from without any of its dates)."""
    if not anchors:
        return f"+{delay} after {after}"
    without = {1: "it", 2: "either"}.get(len(anchors), "any of them")
    return (f"{delay} after {', else '.join(anchors)}; "
            f"{fallback if fallback is not None else delay} after {after} without {without}")


def text(item):
    """One campaign's graph as lines of text."""
    lines = [f"{item['id']}: {item['name']} (on {item['entry']}; window {item['window']})"]
    if item["exit"]:
        lines.append(f"  exit when: {item['exit']} (her pending emails are cancelled)")
    for step in item["steps"]:
        wait = step["wait"]
        subjects = ([f"{v['variant']}: {v['subject']}" for v in step["subjects"]]
                    or [step["subject"]])
        lines.append(f"  {step['id']:<24} {wait:<28} {subjects[0]}")
        lines += [f"  {'':<24} {'':<28} {more}" for more in subjects[1:]]
        if step["when"]:
            lines.append(f"  {'':<24} when {step['when']}")
        if step["then"]:
            lines.append(f"  {'':<24} then: {branch_words(step)}")
    return lines


def branch_words(step):
    """What a step's ``then`` does, in words (branches.py)."""
    where = "the sequence ends" if step["then"] == "end" else f"into {step['then']}"
    condition = f" if {step['then_when']}" if step["then_when"] else ""
    return f"{where}{condition} (the rest of this campaign is cancelled)"


# --- drawn for the preview site -----------------------------------------------------------
_BOX_W, _LINE_H, _PAD, _GAP, _LEFT = 520, 18, 10, 34, 20


def _svg(item):
    """The steps as boxes top to bottom, an arrow between each with its wait, the condition
    in each box, and the goal beside them."""
    parts, y = [], 10
    if item["exit"]:
        parts.append(f'<rect x="{_LEFT}" y="{y}" width="{_BOX_W}" height="30" rx="15" '
                     'fill="#fbe9e7" stroke="#c0392b"/>'
                     f'<text x="{_LEFT + 14}" y="{y + 20}" font-size="13">Ends at once when: '
                     f'{escape(item["exit"])}</text>')
        y += 30 + _GAP
    for number, step in enumerate(item["steps"]):
        label = step["wait"]
        parts.append(f'<line x1="{_LEFT + 30}" y1="{y - _GAP + 4}" x2="{_LEFT + 30}" y2="{y - 4}" '
                     'stroke="#888" marker-end="url(#arrow)"/>' if number or item["exit"] else "")
        parts.append(f'<text x="{_LEFT + 40}" y="{y - _GAP / 2 + 4}" font-size="12" '
                     f'fill="#555">{escape(label)}</text>')
        rows = [(f"{step['id']}", "bold")]
        if step["when"]:
            rows.append((f"only when: {step['when']} (else skipped)", "when"))
        if step["then"]:
            rows.append((f"once sent, then: {branch_words(step)}", "when"))
        rows += [(f"{v['variant']}: {v['subject']}", "") for v in step["subjects"]] or [
            (step["subject"], "")]
        height = _PAD * 2 + _LINE_H * len(rows)
        dashed = ' stroke-dasharray="5 3"' if step["when"] else ""
        parts.append(f'<rect x="{_LEFT}" y="{y}" width="{_BOX_W}" height="{height}" rx="6" '
                     f'fill="#f5eff8" stroke="#7a4e8c"{dashed}/>')
        for row, (words, kind) in enumerate(rows):
            style = {"bold": ' font-weight="bold"', "when": ' fill="#7a4e8c"'}.get(kind, "")
            parts.append(f'<text x="{_LEFT + 12}" y="{y + _PAD + _LINE_H * (row + 1) - 4}" '
                         f'font-size="13"{style}>{escape(words)}</text>')
        y += height + _GAP
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_BOX_W + 2 * _LEFT}" '
            f'height="{y}" role="img" aria-label="The steps of {escape(item["name"])}">'
            '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="4" refY="4" '
            'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#888"/></marker></defs>'
            + "".join(parts) + "</svg>")


def _branch_html(step):
    target = ("the sequence ends" if step["then"] == "end" else
              f'into <a href="graph-{escape(step["then"])}.html">{escape(step["then"])}</a>')
    condition = f" if <code>{escape(step['then_when'])}</code>" if step["then_when"] else ""
    return f"<p>Once sent, then: {target}{condition} (the rest of this campaign is cancelled)</p>"


def page(item):
    """A self-contained HTML page with the drawing and the same as a nested list."""
    steps = "".join(
        f"<li><strong>{escape(s['id'])}</strong>: {escape(s['wait'])}"
        + (f"; only when <code>{escape(s['when'])}</code>" if s["when"] else "")
        + "<ul>" + "".join(f"<li>{escape(v['variant'])}: {escape(v['subject'])}</li>"
                           for v in s["subjects"])
        + ("" if s["subjects"] else f"<li>{escape(s['subject'])}</li>") + "</ul>"
        + (_branch_html(s) if s["then"] else "") + "</li>"
        for s in item["steps"])
    goal = (f"<p>Ends at once when: <code>{escape(item['exit'])}</code></p>"
            if item["exit"] else "<p>No goal: every step is sent.</p>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(item['name'])}: the campaign's steps</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222}</style></head><body>"
            f"<p><a href=\"index.html\">Back to the preview</a></p><h1>{escape(item['name'])} "
            f"<small>({escape(item['id'])}, on {escape(item['entry'])}; window "
            f"{escape(item['window'])})</small></h1>{goal}{_svg(item)}<ol>{steps}</ol>"
            "</body></html>")
