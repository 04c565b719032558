"""Property-based test (Hypothesis) of CSV import: whatever the names hold (commas, quotes,
semicolons, non-ASCII), every distinct valid row is imported once, with its name intact."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sender.lists import import_csv
from tests.conftest import at

# Anything a name may hold: control characters, line separators and '=?' are refused.
NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                max_size=40).filter(lambda s: "=?" not in s)
LOCALS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])   # examples: the profile's
@given(rows=st.lists(st.tuples(LOCALS, NAMES), min_size=1, max_size=25),
       delimiter=st.sampled_from([",", ";"]), bom=st.booleans())
def test_any_names_round_trip_and_each_address_once(tmp_path_factory, env, make_drip, rows, delimiter, bom):
    folder = tmp_path_factory.mktemp("csv")
    drip = make_drip({**env, "DRIP_DATABASE": str(folder / "drip.db")})
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["email", "name"])
    for local, name in rows:
        writer.writerow([f"{local}@example.com", name])
    path = folder / "people.csv"
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")

    import_csv(drip, path, consent="property test", now=at("2026-03-02T18:00Z"))

    first = {}
    for local, name in rows:
        first.setdefault(f"{local}@example.com", " ".join(name.split()))
    stored = {p.email: p.name for p in drip.store.list_subscribers()}
    assert stored == first
