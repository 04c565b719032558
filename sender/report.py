"""`drip report`: per campaign and step, what was sent and what happened to it.

Counts come from the delivery ledger (``sent``) and from recorded events (the
rest: distinct deliveries with such an event). An unsubscribe, bounce or
complaint is counted at the last email the person was sent before leaving, so
``left`` per step says where in the sequence people leave. Broadcasts (ledger campaign
``broadcast.NAME``) are listed on their own, one row each, beside the sequences.
"""

from __future__ import annotations

from html import escape

from . import ab_report, brake
from .broadcasts import name_of
from .events import TYPES

METRICS = ("sent", *TYPES)
LEAVING = ("bounced", "complained", "unsubscribed")


def build(drip, *, now=None):
    """The report as plain data: {"campaigns": [{"id", "name", "steps": [...]}],
    "broadcasts": [{"name", "subject", "state", "sent", ...}], "totals"}, and with ``now``
    "brake": each campaign's complaint and bounce rates in the brake's window beside its
    limits (``brake.overview``)."""
    summary = drip.store.events_summary()
    broadcasts = _broadcasts(drip, summary)
    summary = {key: counts for key, counts in summary.items() if name_of(key[0]) is None}
    campaigns, known = [], set()
    for campaign in drip.campaigns:
        steps = []
        for step in campaign.steps:
            known.add((campaign.id, step.id))
            steps.append(_row(step.id, step.subject, summary.get((campaign.id, step.id), {})))
            if getattr(step, "subjects", ()):       # an A/B test: each variant's numbers
                steps[-1]["variants"] = ab_report.variant_rows(drip.store, campaign, step)
                steps[-1]["ab"] = ab_report.verdict(steps[-1]["variants"])
        campaigns.append({"id": campaign.id, "name": campaign.name, "steps": steps})
    # Steps removed from the campaign files still have a history.
    for (campaign_id, step_id), counts in sorted(summary.items()):
        if (campaign_id, step_id) in known:
            continue
        entry = next((c for c in campaigns if c["id"] == campaign_id), None)
        known_to_drip = drip.campaigns.get(campaign_id)      # e.g. the sunset rule's question
        if entry is None:
            entry = {"id": campaign_id, "steps": [],
                     "name": known_to_drip.name if known_to_drip else
                     f"{campaign_id} (no longer in campaigns/)"}
            campaigns.append(entry)
        step = known_to_drip.step(step_id) if known_to_drip else None
        entry["steps"].append(_row(step_id, step.subject if step else "(step removed)", counts))
    totals = {m: sum(s[m] for c in campaigns for s in c["steps"]) + sum(b[m] for b in broadcasts)
              for m in (*METRICS, "left")}
    data = {"campaigns": campaigns, "broadcasts": broadcasts, "totals": totals}
    if now is not None:
        data["brake"] = brake.overview(drip, now=now)
    return data


def _broadcasts(drip, summary):
    """One row per broadcast recorded (scheduled or sent), with its counts, by first time."""
    rows, seen = [], set()
    for record in drip.store.list_broadcasts():
        seen.add(record["campaign"])
        row = _row("send", record["subject"], summary.get((record["campaign"], "send"), {}))
        rows.append({"name": record["name"], "state": record["state"],
                     "first_at": record["first_at"].isoformat(), **row})
    for (campaign, step), counts in sorted(summary.items()):
        if name_of(campaign) is not None and campaign not in seen:   # its record is gone
            rows.append({"name": name_of(campaign), "state": "-", "first_at": None,
                         **_row(step, "", counts)})
    return rows


def _row(step_id, subject, counts):
    row = {"step": step_id, "subject": subject}
    row.update({m: int(counts.get(m, 0)) for m in METRICS})
    row["left"] = sum(row[m] for m in LEAVING)
    return row


def _rate(part, whole):
    return f"{100 * part / whole:.0f}%" if whole else "-"


def text(report):
    """A plain-text table per campaign."""
    lines = []
    headers = ("STEP", *(m.upper() for m in METRICS), "LEFT", "OPEN%")
    for campaign in report["campaigns"]:
        lines.append(f"{campaign['name']} ({campaign['id']})")
        rows = [(s["step"], *(s[m] for m in METRICS), s["left"], _rate(s["opened"], s["sent"]))
                for s in campaign["steps"]]
        widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h)
                  for i, h in enumerate(headers)]
        lines.append("  " + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            lines.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        for step in campaign["steps"]:
            lines += ab_report.text_lines(step)
        lines.append("")
    if report.get("broadcasts"):
        lines.append("Broadcasts")
        headers = ("NAME", "STATE", *(m.upper() for m in METRICS), "OPEN%")
        rows = [(b["name"], b["state"], *(b[m] for m in METRICS), _rate(b["opened"], b["sent"]))
                for b in report["broadcasts"]]
        widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
        for row in (headers, *rows):
            lines.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        lines.append("")
    totals = report["totals"]
    lines.append("Total: " + ", ".join(f"{totals[m]} {m}" for m in (*METRICS, "left")))
    if "brake" in report:
        lines += ["", brake.overview_text(report["brake"])]
    return "\n".join(line.rstrip() for line in lines)


def _funnel_svg(campaign):
    """A horizontal bar per step: the bar is how many were sent that step, the dark part
    how many opened, and the label how many left after it."""
    steps = campaign["steps"]
    bar_h, gap, label_w, width = 26, 14, 150, 640
    top = max([s["sent"] for s in steps] + [1])
    height = len(steps) * (bar_h + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="Funnel for {escape(campaign["name"])}">']
    for i, step in enumerate(steps):
        y = gap + i * (bar_h + gap)
        full = (width - label_w - 120) * step["sent"] / top
        opened = (width - label_w - 120) * step["opened"] / top
        parts.append(f'<text x="0" y="{y + 18}" font-size="13">{escape(step["step"])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{full:.1f}" height="{bar_h}" '
                     'fill="#d9c6e2"><title>sent</title></rect>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{opened:.1f}" height="{bar_h}" '
                     'fill="#7a4e8c"><title>opened</title></rect>')
        note = f'{step["sent"]} sent'
        if step["left"]:
            note += f', {step["left"]} left'
        parts.append(f'<text x="{label_w + full + 6:.1f}" y="{y + 18}" font-size="12" '
                     f'fill="#444">{escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _brake_html(data):
    limits = data["limits"]
    rows = "".join(
        f"<tr><td>{escape(r['campaign'])}</td><td>{r['sent']}</td>"
        f"<td>{r['complained']} ({r['complaint_rate'] * 100:.2f}%)</td>"
        f"<td>{r['bounced']} ({r['bounce_rate'] * 100:.2f}%)</td>"
        f"<td>{'paused' if r['paused'] else 'sending'}</td></tr>" for r in data["campaigns"])
    return (f"<h2>Complaints and bounces, last {limits['window_days']:g} days</h2>"
            f'<p class="muted">The brake pauses a campaign at {brake.percent(limits["complaint_rate"])} '
            f'complaints or {brake.percent(limits["bounce_rate"])} hard bounces (at least '
            f"{limits['min_events']} of them); Gmail's own limit for complaints is 0.3%.</p>"
            "<table><thead><tr><th>campaign</th><th>sent</th><th>complaints</th>"
            f"<th>hard bounces</th><th>state</th></tr></thead><tbody>{rows}</tbody></table>")


def _broadcasts_html(rows):
    """Broadcasts beside the sequences: a bar each (sent; the dark part opened), and a table."""
    chart = _funnel_svg({"name": "Broadcasts", "steps": [{**b, "step": b["name"]} for b in rows]})
    head = "".join(f"<th>{escape(h)}</th>" for h in ("broadcast", "state", *METRICS))
    body = "".join("<tr>" + f"<td>{escape(b['name'])}</td><td>{escape(b['state'])}</td>"
                   + "".join(f"<td>{b[m]}</td>" for m in METRICS) + "</tr>" for b in rows)
    return (f"<h2>Broadcasts</h2>{chart}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def html(report, *, title="Email sequence report"):
    """A self-contained page: a funnel chart (inline SVG) and the table per campaign."""
    body = [f"<h1>{escape(title)}</h1>",
            '<p class="muted">Bars: emails sent per step; the dark part: opened. '
            '"left": people who unsubscribed, bounced or complained after that email.</p>']
    for campaign in report["campaigns"]:
        body.append(f"<h2>{escape(campaign['name'])}</h2>")
        if campaign["steps"]:
            body.append(_funnel_svg(campaign))
        head = "".join(f"<th>{escape(h)}</th>" for h in ("step", *METRICS, "left"))
        rows = "".join(
            "<tr>" + f"<td>{escape(s['step'])}</td>"
            + "".join(f"<td>{s[m]}</td>" for m in (*METRICS, "left")) + "</tr>"
            for s in campaign["steps"])
        body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        body += [ab_report.html(s) for s in campaign["steps"] if "variants" in s]
    if report.get("broadcasts"):
        body.append(_broadcasts_html(report["broadcasts"]))
    if "brake" in report:
        body.append(_brake_html(report["brake"]))
    style = ("body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
             "padding:0 1rem;color:#222}table{border-collapse:collapse;margin:1rem 0 2rem}"
             "th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:right}"
             "th:first-child,td:first-child{text-align:left}.muted{color:#666}")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{style}</style></head><body>"
            + "".join(body) + "</body></html>")
