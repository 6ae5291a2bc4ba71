"""A small vendored table of homoglyphs: characters that look like a Latin letter or digit but are
not one, after Unicode NFKC has already folded full-width, mathematical and compatibility forms.

Written by hand for this project from the Cyrillic, Greek, Armenian, Cherokee and IPA letters most
often used to dodge keyword filters. It is deliberately small and one-way (lookalike -> ASCII); it
is not the full Unicode confusables list, and it folds only to lowercase letters (scoring is
case-insensitive after ``casefold``).
"""

from __future__ import annotations

_GROUPS: dict[str, str] = {
    "a": "аАɑαΑᎪⲀꓮ⍺ạąàáâãäåā",
    "b": "ЬвВβΒᏴꓐƅɓḃ",
    "c": "сСϲϹᏟⲤꓚçćĉċč",
    "d": "ԁᎠꓓɗḋďđ",
    "e": "еЕεΕᎬⲈꓰёЁèéêëēĕėęě℮",
    "f": "ϝϜꓝſ",
    "g": "ɡցᏀꓖĝğġģ",
    "h": "һНΗᎻⲎꓧħĥ",
    "i": "іІιΙӀӏɩꓲ¡ìíîïĩīĭįı",
    "j": "јЈϳᎫꓙĵ",
    "k": "кКκΚᏦⲔꓗķ",
    "l": "ⅼℓǀ∣ꓡĺļľŀł",
    "m": "мМμΜᎷⲘꓟ",
    "n": "пηΝⲚꓠոñńņňŉ",
    "o": "оОοΟσօՕ০Ⲟꓳ๐òóôõöøōŏő",
    "p": "рРρΡᏢⲢꓑþ",
    "q": "ԛզ",
    "r": "гᏒꓣŕŗř",
    "s": "ѕЅᏚꓢśŝşšș",
    "t": "тТτΤᎢⲦꓔţťŧț",
    "u": "υսՍꓴùúûüũūŭůűų",
    "v": "ѵνⅴꓦ∨",
    "w": "ԝѡꓪŵ",
    "x": "хХχΧⅹꓫ×",
    "y": "уУγΥүҮꓬýÿŷ",
    "z": "ΖᏃꓜźżž",
}

CONFUSABLES: dict[str, str] = {ch: latin for latin, chars in _GROUPS.items() for ch in chars}


def fold_confusable(ch: str) -> str:
    """The Latin letter a single character imitates, or the character itself."""
    return CONFUSABLES.get(ch, ch)
