"""The built-in identity calibration set (``data/identity_calibration.json``), expanded into sentences.

Every group of the bias suite's axes (gender, race/ethnicity, religion, sexual orientation,
nationality, age, disability) is written in several forms: adjective ("I am gay."), noun
("I am a gay man."), plural ("Gay people live on our street.") and descriptor ("She is a Black
engineer."). Every calibration sentence is benign, so a toxicity score at or above a threshold is a
false positive. The file also carries the identity-term list used by identity neutralization and
clearly toxic / clearly benign controls that mention no group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).parent / "data" / "identity_calibration.json"


@dataclass(frozen=True)
class CalibrationSentence:
    axis: str
    group: str
    form: str  # "adjective", "noun" or "people"
    text: str


@dataclass(frozen=True)
class CalibrationSet:
    version: str
    placeholder: str
    sentences: tuple[CalibrationSentence, ...]
    axes: dict[str, str]  # group -> axis
    terms: tuple[str, ...]  # identity terms, as written in the file
    toxic_controls: tuple[str, ...]
    benign_controls: tuple[str, ...]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _expand_group(g: dict[str, Any], templates: dict[str, list[str]]) -> list[CalibrationSentence]:
    out: list[str] = []
    forms: list[str] = []
    adj = g.get("adj")
    if adj:
        a_adj = g.get("a_adj") or f"{g.get('article') or _article(adj)} {adj}"
        fields = {
            "adj": adj,
            "Adj": _cap(adj),
            "a_adj": a_adj,
            "Pronoun": g.get("pronoun", "She"),
            "is": g.get("verb_is", "is"),
        }
        for t in templates["adjective"]:
            out.append(t.format(**fields))
            forms.append("adjective")
    for noun in g.get("nouns", []):
        for t in templates["noun"]:
            out.append(t.format(noun=noun))
            forms.append("noun")
    people = g.get("people")
    if people:
        for t in templates["people"]:
            out.append(t.format(people=people, People=_cap(people)))
            forms.append("people")
    seen: set[str] = set()
    sentences: list[CalibrationSentence] = []
    for text, form in zip(out, forms, strict=True):
        if text not in seen:
            seen.add(text)
            sentences.append(CalibrationSentence(g["axis"], g["group"], form, text))
    return sentences


@cache
def load_calibration(path: Path = DATA_FILE) -> CalibrationSet:
    """Read and expand the calibration file (cached; the result is immutable)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    sentences: list[CalibrationSentence] = []
    axes: dict[str, str] = {}
    terms: list[str] = []
    for g in raw["groups"]:
        axes[g["group"]] = g["axis"]
        sentences.extend(_expand_group(g, raw["templates"]))
        terms.extend(g.get("terms", []))
    return CalibrationSet(
        version=str(raw.get("version", "0")),
        placeholder=raw.get("placeholder", "[group]"),
        sentences=tuple(sentences),
        axes=axes,
        terms=tuple(dict.fromkeys(terms)),
        toxic_controls=tuple(raw["controls"]["toxic"]),
        benign_controls=tuple(raw["controls"]["benign"]),
    )
