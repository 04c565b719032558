"""The shipped copy is in our own words and in one spelling convention (US English).

Two checks over every file under templates/ (and the subjects and preheaders in campaigns/):

- no run of 8 or more words is shared with the facts we were given (../shared/CONTENT-BRIEF.md
  and ../shared/SAFETY.md), after both sides are reduced to lowercase words with Jinja tags,
  HTML tags and punctuation removed;
- no British spelling from a list appears.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

MAX_SHARED_RUN = 7  # a run of 8 or more words shared with a source document fails

SHARED = Path(os.environ.get("DRIP_SHARED_DIR") or REPO.parent / "shared")
SOURCES = [SHARED / "CONTENT-BRIEF.md", SHARED / "SAFETY.md"]
TEXT_SUFFIXES = {".html", ".txt", ".css", ".svg", ".toml", ".md"}

needs_sources = pytest.mark.skipif(
    not all(p.is_file() for p in SOURCES),
    reason=f"the source documents are not beside this checkout ({SHARED}; set DRIP_SHARED_DIR)")


def copy_files() -> list[Path]:
    """Every text file under templates/, and the campaign files (subjects, preheaders)."""
    files = [p for p in (REPO / "templates").rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    files += (REPO / "campaigns").glob("*.toml")
    return sorted(files)


# Names are not prose: the guide's title is the coach's product name and is quoted as it is.
NAMES = ["The No B.S. Guide to a Stronger, Drier Pregnancy & Postpartum"]

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_LITERAL = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_STYLE = re.compile(r"<style\b.*?</style>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>", re.S)
_APOSTROPHE = re.compile(r"(?<=\w)['\u2019](?=\w)")
BREAK = "\x00"  # ends a run: never equal to a word of a source document
_WORD = re.compile(r"[a-z0-9]+|\x00")


def _jinja_text(tag: re.Match) -> str:
    """A Jinja tag's string literals (button labels, section titles), each on its own; comments
    and code drop out."""
    if tag.group(0).startswith("{#"):
        return BREAK
    literals = [a or b for a, b in _LITERAL.findall(tag.group(0))]
    return BREAK.join(["", *literals, ""]) if literals else BREAK


def words(text: str) -> list[str]:
    """Lowercase words of ``text``: Jinja code, <style> blocks and HTML tags out, punctuation stripped.

    Text inside a Jinja tag's string literals stays (it is copy: a button label, a title), each
    literal a run of its own. A tag becomes a space, so words on either side of one never join;
    an apostrophe inside a word is dropped ("don't" -> "dont") so both spellings compare equal.
    """
    text = _JINJA.sub(_jinja_text, text)
    text = _STYLE.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    for name in NAMES:
        text = re.sub(r"\s+".join(map(re.escape, name.split())), BREAK, text, flags=re.I)
    text = _APOSTROPHE.sub("", text.lower())
    return _WORD.findall(text)


def shared_runs(ours: list[str], theirs: list[str], min_len: int) -> list[tuple[int, str]]:
    """Maximal runs of at least ``min_len`` words found in both lists, longest first."""
    where: dict[str, list[int]] = {}
    for j, word in enumerate(theirs):
        where.setdefault(word, []).append(j)
    found: dict[str, int] = {}
    for i, word in enumerate(ours):
        for j in where.get(word, ()):
            if i and j and ours[i - 1] == theirs[j - 1]:
                continue  # not the start of a run: it was counted from an earlier word
            n = 0
            while (i + n < len(ours) and j + n < len(theirs) and ours[i + n] == theirs[j + n]
                   and ours[i + n] != BREAK):
                n += 1
            if n >= min_len:
                run = " ".join(ours[i:i + n])
                found[run] = max(found.get(run, 0), n)
    return sorted(((n, run) for run, n in found.items()), reverse=True)


def test_words_drops_markup_and_punctuation():
    text = ('{% if x %}<p class="a">Don\u2019t <strong>over-arch</strong>, '
            'Mom &amp; baby.{{ coach.name }}</p>{# a note #}<style>p { color: red; }</style>')
    assert words(text) == [BREAK, "dont", "over", "arch", "mom", "baby", BREAK, BREAK]


def test_words_keeps_the_copy_in_jinja_string_literals_as_runs_of_their_own():
    text = '{{ m.button(url ~ "#top", "Open your guide") }} now'
    assert words(text) == [BREAK, "top", BREAK, "open", "your", "guide", BREAK, "now"]


def test_words_drops_names():
    text = "Get <em>The No B.S. Guide</em> to a Stronger, Drier\nPregnancy &amp; Postpartum today"
    assert words(text) == ["get", BREAK, "today"]


def test_shared_runs_finds_the_longest_run_and_only_maximal_ones():
    ours = "one two three four five six seven eight nine ten".split()
    theirs = "zero two three four five six seven eight nine eleven".split()
    assert shared_runs(ours, theirs, 3) == [(8, "two three four five six seven eight nine")]
    assert shared_runs(ours, theirs, 9) == []
    assert shared_runs(["a", "b", BREAK, "c"], ["a", "b", BREAK, "c"], 3) == []


@needs_sources
def test_no_run_of_eight_words_is_shared_with_the_source_documents():
    theirs = {p.name: words(p.read_text(encoding="utf-8")) for p in SOURCES}
    problems = []
    for path in copy_files():
        ours = words(path.read_text(encoding="utf-8"))
        for name, source in theirs.items():
            for n, run in shared_runs(ours, source, MAX_SHARED_RUN + 1):
                problems.append(f"{path.relative_to(REPO)}: {n} words shared with {name}: \"{run}\"")
    assert not problems, ("copy must be in our own words (runs under 8 words); rewrite these:\n"
                          + "\n".join(problems))


# British spellings, and the US spelling to use. Whole words, any case; the families below are
# expanded with their usual endings (recognise, recognised, recognising, recognisation ...).
_ISE = ("recognis organis realis popularis prioritis minimis maximis emphasis personalis stabilis "
        "mobilis immobilis apologis specialis visualis normalis categoris summaris memoris utilis "
        "optimis customis familiaris energis sterilis moisturis localis sympathis criticis finalis "
        "standardis characteris neutralis generalis scrutinis agonis modernis socialis sensitis "
        "desensitis authoris harmonis idealis internalis verbalis vocalis").split()
_OUR = ("colour favour flavour honour humour labour neighbour behaviour harbour rumour vigour odour "
        "endeavour savour armour tumour").split()
_RE = "centre metre litre fibre theatre calibre sombre lustre meagre manoeuvre".split()
_LL = ("levell travell modell labell cancell fuell counsell signall channell totall").split()
_AE = {"caesarean": "cesarean", "oesophagus": "esophagus", "oestrogen": "estrogen",
       "haemorrhage": "hemorrhage", "haemorrhoids": "hemorrhoids", "anaemia": "anemia",
       "anaemic": "anemic", "paediatric": "pediatric", "paediatrician": "pediatrician",
       "gynaecology": "gynecology", "gynaecologist": "gynecologist", "orthopaedic": "orthopedic",
       "foetus": "fetus", "foetal": "fetal", "diarrhoea": "diarrhea", "anaesthetic": "anesthetic",
       "anaesthesia": "anesthesia", "oedema": "edema", "leukaemia": "leukemia", "praevia": "previa"}
_OTHER = {
    "practise": "practice", "practised": "practiced", "practising": "practicing",
    "analyse": "analyze", "analysed": "analyzed", "paralyse": "paralyze", "catalogue": "catalog",
    "defence": "defense", "offence": "offense", "licence": "license", "pretence": "pretense",
    "judgement": "judgment", "ageing": "aging", "grey": "gray", "aluminium": "aluminum",
    "cheque": "check", "tyre": "tire", "mould": "mold", "sceptical": "skeptical", "kerb": "curb",
    "programme": "program", "programmes": "programs", "pyjamas": "pajamas", "jewellery": "jewelry",
    "marvellous": "marvelous", "skilful": "skillful", "wilful": "willful", "instalment": "installment",
    "enrol": "enroll", "enrolment": "enrollment", "fulfil": "fulfill", "fulfilment": "fulfillment",
    "whilst": "while", "amongst": "among", "learnt": "learned", "spelt": "spelled",
    "fortnight": "two weeks", "mum": "mom", "mums": "moms", "mummy": "mommy", "nappy": "diaper",
    "nappies": "diapers", "pram": "stroller", "pushchair": "stroller", "cot": "crib",
    "antenatal": "prenatal", "on the spot": "in place",
}
BRITISH: dict[str, str] = {
    **{b + end: b[:-2] + "iz" + end for b in _ISE for end in ("e", "ed", "es", "ing", "ation", "ations")},
    **{b + end: b[:-2] + "r" + end for b in _OUR for end in ("", "s", "ed", "ing", "ite", "ites",
                                                              "able", "ful", "less")},
    **{b + end: b[:-2] + "er" + end.replace("d", "ed") for b in _RE for end in ("", "s", "d")},
    **{b + end: b[:-1] + end for b in _LL for end in ("ed", "ing", "er", "ers")},
    **_AE, **_OTHER,
}


def british_spellings(text: str) -> list[str]:
    """``LINE: 'word' (US: 'word')`` for each British spelling in ``text``, in reading order."""
    found = []
    for british, us in BRITISH.items():
        for m in re.finditer(rf"\b{re.escape(british)}\b", text, re.I):
            line = text.count("\n", 0, m.start()) + 1
            found.append((m.start(), f"{line}: {m.group(0)!r} (US: {us!r})"))
    return [message for _, message in sorted(found)]


def test_british_spellings_are_found_and_us_ones_are_not():
    assert british_spellings("The colour of the\nCentre; a programme") == [
        "1: 'colour' (US: 'color')", "2: 'Centre' (US: 'center')", "2: 'programme' (US: 'program')"]
    assert british_spellings("color, center, program, mom, recognize, practice, summum, crib, "
                             "exercise, emphasis, labor") == []
    assert british_spellings("recognising; favourite; levelled; centred") == [
        "1: 'recognising' (US: 'recognizing')", "1: 'favourite' (US: 'favorite')",
        "1: 'levelled' (US: 'leveled')", "1: 'centred' (US: 'centered')"]


def test_the_copy_uses_us_spelling():
    problems = []
    for path in copy_files():
        for found in british_spellings(path.read_text(encoding="utf-8")):
            problems.append(f"{path.relative_to(REPO)}:{found}")
    assert not problems, "use US English throughout (the coach is in Washington State):\n" + "\n".join(
        problems)
