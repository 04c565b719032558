#!/usr/bin/env python3
"""Refresh sender/data/caniemail-unsupported.json from the caniemail.com data set.

`drip check` compares each rendered email with this file. It keeps, for every
HTML and CSS feature, the target clients whose latest tested version does not
support it at all ("n"); partial support ("a") is not listed.

    npm install --prefix .tools/caniemail caniemail
    python scripts/update-caniemail.py [path/to/caniemail.json]
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / ".tools/caniemail/node_modules/caniemail/data/caniemail.json"
TARGET = ROOT / "sender/data/caniemail-unsupported.json"
# (family, platform) -> the name shown in a problem
CLIENTS = {
    ("gmail", "desktop-webmail"): "Gmail (desktop webmail)",
    ("gmail", "ios"): "Gmail (iOS)",
    ("gmail", "android"): "Gmail (Android)",
    ("outlook", "windows"): "Outlook (Windows)",
    ("apple-mail", "macos"): "Apple Mail (macOS)",
    ("apple-mail", "ios"): "Apple Mail (iOS)",
}


def latest(versions):
    """The support value of the most recently listed version ('y', 'n', 'a', 'u', with notes)."""
    return list(versions.values())[-1].split()[0] if versions else None


def main(argv):
    source = Path(argv[1]) if len(argv) > 1 else SOURCE
    if not source.is_file():
        sys.exit(f"{source} not found: run `npm install --prefix .tools/caniemail caniemail` first")
    data = json.loads(source.read_text(encoding="utf-8"))
    package = source.parent.parent / "package.json"
    version = json.loads(package.read_text())["version"] if package.is_file() else "?"
    features = {}
    for feature in data["data"]:
        if feature["category"] not in ("html", "css"):
            continue
        unsupported = [f"{family}/{platform}" for (family, platform) in CLIENTS
                       if latest(feature["stats"].get(family, {}).get(platform, {})) == "n"]
        if unsupported:
            features[feature["slug"]] = {"title": feature["title"], "url": feature["url"],
                                         "unsupported": unsupported}
    out = {
        "source": f"caniemail {version} (npm), data updated {data.get('last_update_date', '?')}",
        "clients": {f"{f}/{p}": name for (f, p), name in CLIENTS.items()},
        "features": dict(sorted(features.items())),
    }
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    # One feature per line, so a refresh reads well in a diff.
    lines = [f" {json.dumps(slug)}: {json.dumps(value, ensure_ascii=False)}"
             for slug, value in out.pop("features").items()]
    head = json.dumps(out, indent=1, ensure_ascii=False)[:-2]
    TARGET.write_text(head + ',\n "features": {\n' + ",\n".join(lines) + "\n }\n}\n",
                      encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(features)} features unsupported somewhere")


if __name__ == "__main__":
    main(sys.argv)
