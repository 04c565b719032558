"""Charts drawn on the server as SVG: no script, nothing to download, and the stylesheet
gives them the coach's colours (classes only: the Content-Security-Policy allows no inline
style). Every label is escaped; each bar carries its number in a <title> and the chart its
name, for screen readers and for a long press on a phone.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 150      # the viewBox: drawn for a phone, scaled up on a laptop


def number(value):
    return f"{value:,}"


def ceiling(value):
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 5, 10) if value <= m * magnitude)


def bars(values, labels, *, title):
    """A vertical bar per value, labelled below with ``labels`` (about six of them shown)."""
    left, right, top, bottom = 34, 6, 8, 20
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    axis = ceiling(max(values, default=0))
    slot = plot_w / max(len(values), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for fraction in (0, 0.5, 1) if axis % 2 == 0 else (0, 1):    # whole numbers only
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">'
                     f"{number(int(axis * fraction))}</text>")
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = plot_h * value / axis
        x = left + i * slot + slot * 0.15
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - height:.1f}" '
                     f'width="{slot * 0.7:.1f}" height="{height:.1f}">'
                     f"<title>{escape(label)}: {number(value)}</title></rect>")
    every = max(1, math.ceil(len(values) / 6))
    for i in range(0, len(values), every):
        x = left + (i + 0.5) * slot
        parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                     f"{escape(labels[i])}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel(steps, *, title):
    """A horizontal bar per step: its length how many were sent that step, the darker part
    how many opened; ``steps`` are dicts with step, sent, opened and left."""
    label_w, row_h, gap = 92, 22, 8
    width = WIDTH - label_w - 70
    height = gap + len(steps) * (row_h + gap)
    top = max([s["sent"] for s in steps] + [1])
    parts = [f'<svg class="chart funnel" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for i, step in enumerate(steps):
        y = gap + i * (row_h + gap)
        name = step["step"] if len(step["step"]) <= 14 else step["step"][:13] + "…"
        sent_w, opened_w = width * step["sent"] / top, width * step["opened"] / top
        parts.append(f'<text class="axis" x="0" y="{y + 15}"><title>{escape(step["step"])}'
                     f"</title>{escape(name)}</text>")
        parts.append(f'<rect class="bar-light" x="{label_w}" y="{y}" width="{sent_w:.1f}" '
                     f'height="{row_h}"><title>{number(step["sent"])} sent</title></rect>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{opened_w:.1f}" '
                     f'height="{row_h}"><title>{number(step["opened"])} opened</title></rect>')
        note = number(step["sent"]) + (f", {number(step['left'])} left" if step["left"] else "")
        parts.append(f'<text class="axis" x="{label_w + sent_w + 4:.1f}" y="{y + 15}">'
                     f"{escape(note)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))
