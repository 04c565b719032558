"""A/B subjects in `drip report`: each variant's numbers (sent, delivered, opened, clicked)
with the counts behind its click rate, and whether the difference means anything yet.

Each sent email of the step is put under the variant its subscriber was given
(``step_rules.variant_index``, the same draw that chose the subject). Clicks decide, never
opens (Apple Mail's privacy protection "opens" whatever it downloads). The leader is
compared with every other variant: Fisher's exact test when a table has an expected count
under 5, else the two-proportion z-test; the difference is called meaningful only when
every comparison gives p < ``ALPHA``. Written out with the standard library (no scipy).

The draw depends on the number of subjects: adding or removing one starts a new test,
and the numbers of emails sent before the edit are counted under the new split.
"""

from __future__ import annotations

import math
from html import escape

from . import step_rules
from .events import CLICKED, DELIVERED, OPENED

ALPHA = 0.05
SMALL = 5          # below this expected count in any cell, Fisher's exact test


def variant_rows(store, campaign, step):
    """[{"variant", "subject", "sent", "delivered", "opened", "clicked"}] for an A/B step."""
    subjects = step.subjects
    rows = [{"variant": step_rules.variant_label(i), "subject": s, "sent": 0, "delivered": 0,
             "opened": 0, "clicked": 0} for i, s in enumerate(subjects)]
    for subscriber_id, types in store.step_outcomes(campaign.id, step.id).items():
        row = rows[step_rules.variant_index(campaign.id, step.id, subscriber_id, len(subjects))]
        row["sent"] += 1
        for kind in (DELIVERED, OPENED, CLICKED):
            row[kind] += kind in types
    return rows


def two_proportion_p(clicked_a, sent_a, clicked_b, sent_b):
    """Two-sided p of the pooled two-proportion z-test."""
    if not sent_a or not sent_b:
        return 1.0
    pooled = (clicked_a + clicked_b) / (sent_a + sent_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / sent_a + 1 / sent_b))
    if spread == 0:
        return 1.0
    z = (clicked_a / sent_a - clicked_b / sent_b) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def fisher_exact_p(a, b, c, d):
    """Two-sided p of Fisher's exact test for the table [[a, b], [c, d]]: the chance of every
    table with these margins as likely as this one or less, in exact integers."""
    row, other, column = a + b, c + d, a + c
    low, high = max(0, column - other), min(row, column)
    weights = {x: math.comb(row, x) * math.comb(other, column - x) for x in range(low, high + 1)}
    observed = weights[a]
    total = sum(weights.values())
    return min(1.0, sum(w for w in weights.values() if w <= observed) / total)


def _compare(leader, other):
    a, n1, c, n2 = leader["clicked"], leader["sent"], other["clicked"], other["sent"]
    total, clicks = n1 + n2, a + c
    expected = [n * k / total for n in (n1, n2) for k in (clicks, total - clicks)] if total else [0]
    if min(expected) < SMALL:
        return "fisher", fisher_exact_p(a, n1 - a, c, n2 - c)
    return "z", two_proportion_p(a, n1, c, n2)


def _rate(row):
    return f"{row['clicked']}/{row['sent']} = {100 * row['clicked'] / row['sent']:.0f}%" \
        if row["sent"] else "0/0"


def verdict(rows):
    """{"test", "p", "meaningful", "note"} for the variants' click counts."""
    if len(rows) < 2 or any(not r["sent"] for r in rows):
        return {"test": None, "p": None, "meaningful": False,
                "note": "not yet meaningful: a variant has not been sent yet"}
    leader = max(rows, key=lambda r: (r["clicked"] / r["sent"], -rows.index(r)))
    results = [_compare(leader, r) for r in rows if r is not leader]
    test = "fisher" if any(t == "fisher" for t, _ in results) else "z"
    p = max(p for _, p in results)
    named = "Fisher's exact test" if test == "fisher" else "the two-proportion z-test"
    if p < ALPHA:
        others = ", ".join(f"{r['variant']} {_rate(r)}" for r in rows if r is not leader)
        note = (f"{leader['variant']} leads: {_rate(leader)} clicked against {others} "
                f"(p = {p:.3g}, {named} on clicks)")
    else:
        note = (f"not yet meaningful: p = {p:.3g} ({named} on clicks; drip calls a difference "
                f"meaningful below p = {ALPHA})")
    return {"test": test, "p": p, "meaningful": p < ALPHA, "note": note}


def text_lines(step_row):
    """The variants of one report row as indented lines (none for a step with one subject)."""
    if "variants" not in step_row:
        return []
    lines = [f"  {step_row['step']}: A/B subjects (click rate = clicked / sent)"]
    for v in step_row["variants"]:
        lines.append(f"    {v['variant']}  {v['sent']} sent, {v['delivered']} delivered, "
                     f"{v['opened']} opened, {v['clicked']} clicked ({_rate(v)})  {v['subject']}")
    lines.append(f"    {step_row['ab']['note']}")
    return lines


def html(step_row):
    """The variants of one report row as a small table (empty for one subject)."""
    if "variants" not in step_row:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("variant", "subject", "sent", "delivered",
                                             "opened", "clicked", "click rate"))
    body = "".join(
        f"<tr><td>{escape(v['variant'])}</td><td>{escape(v['subject'])}</td><td>{v['sent']}</td>"
        f"<td>{v['delivered']}</td><td>{v['opened']}</td><td>{v['clicked']}</td>"
        f"<td>{escape(_rate(v))}</td></tr>" for v in step_row["variants"])
    return (f"<h3>{escape(step_row['step'])}: A/B subjects</h3><table><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table><p class=\"muted\">"
            f"{escape(step_row['ab']['note'])}</p>")
