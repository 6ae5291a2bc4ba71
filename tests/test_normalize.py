"""Normalization before scoring: each obfuscation folds back, benign text survives, spans map back."""

from __future__ import annotations

import pytest

from audit.guard.normalize import NormalizeOptions, drop_terms, normalize, variants
from audit.guard.windows import spans

CASES = {
    "nfkc_fullwidth": ("ｆｕｃｋ you", "fuck you"),
    "nfkc_math_bold": ("𝐢𝐝𝐢𝐨𝐭", "idiot"),
    "homoglyph_cyrillic": ("іdіоt", "idiot"),
    "homoglyph_armenian_u": ("fսck", "fuck"),
    "homoglyph_greek": ("ΙDΙΟΤ", "idiot"),
    "zero_width_space": ("id\u200bi\u200bot", "idiot"),
    "zero_width_joiner_and_bom": ("s\u200dh\ufeffit", "shit"),
    "word_joiner_and_soft_hyphen": ("mo\u2060r\u00adon", "moron"),
    "bidi_override": ("\u202etoidi\u202c", "idiot"),  # displays as "idiot"
    "bidi_override_sentence": ("\u202e.toidi na era uoy\u202c", "you are an idiot."),
    "bidi_override_nested_ltr": ("ab\u202ecd\u202def\u202cgh\u202cij", "abhgefdcij"),
    "bidi_override_ends_at_line_break": ("\u202etoidi\nok", "idiot\nok"),
    "control_chars": ("st\x1bupid\x07", "stupid"),
    "combining_marks": ("fück", "fuck"),
    "zalgo": ("i\u0301\u0316d\u0300i\u0317o\u0350t", "idiot"),
    "case": ("YoU aRe An IdIoT", "you are an idiot"),
    "leet_digits": ("1d10t", "idiot"),
    "leet_symbols": ("$h!t", "shit"),
    "leet_at": ("@ss", "ass"),
    "leet_mixed_sentence": ("y0u 4re 4n 1d10t", "you are an idiot"),
    "leet_keeps_lone_numbers": ("g1ve me 4 cookies", "give me 4 cookies"),
    "leet_numbers_in_leet_text": ("y0u 4r3 4 455", "you are a ass"),
    "leet_words_of_identifier_shape": ("347 5h17 4nd d13.", "eat shit and die."),
    "leet_beside_a_version": ("sh1t, v1.2.3 and mp3", "shit, v1.2.3 and mp3"),
    "leet_text_keeps_versions": ("y0u 4r3 4n 1d10t, v1.2.3", "you are an idiot, v1.2.3"),
    "spaced_letters": ("f u c k off", "fuck off"),
    "dotted_letters": ("f.u.c.k", "fuck"),
    "dashed_letters": ("i-d-i-o-t", "idiot"),
    "spaced_leet": ("s h 1 t", "shit"),
    "spaced_words_double_gap": ("y o u  s u c k", "you suck"),
    "repeated_letters": ("fuuuuuck", "fuck"),
    "combined": ("Ｓ\u200bΗ1Т", "shit"),
    "middle_dot_sentence": ("y·o·u a·r·e a·n i·d·i·o·t.", "you are an idiot."),
    "hyphen_sentence": ("S-h-u-t u-p, y-o-u m-o-r-o-n.", "shut up, you moron."),
    "emoji_between_letters": ("y😀o🔥u a😀r🔥e a😀n i😀d🔥i👍🏽o✨t", "you are an idiot"),
    "emoji_as_word_gaps": ("you😀are😀an😀idiot", "you are an idiot"),
    "interleaving_keeps_apostrophes": ("Y·o·u·'·r·e a·n i·d·i·o·t", "you're an idiot"),
    "punctuation_runs": ("i..d..i..o..t", "idiot"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_obfuscation_folds_back(name: str) -> None:
    raw, expected = CASES[name]
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("In 2024 I had 3 cats!", "in 2024 i had 3 cats!"),
        ("Hello!! How are you?", "hello!! how are you?"),
        ("Call 555-0100 at 9:30.", "call 555-0100 at 9:30."),
        ("Line one.\nLine two.", "line one.\nline two."),
        ("Good book, too.", "good book, too."),
        ("שלום and 你好", "שלום and 你好"),
        ("The X-ray and e-mail at 9:30, rock'n'roll.", "the x-ray and e-mail at 9:30, rock'n'roll."),
        ("I ❤️ NY 👍🏽", "i ❤ ny 👍🏽"),
        ("Catalan col·lecció is fine.", "catalan col·leccio is fine."),
        ("שלום \u202bעולם\u202c ok", "שלום עולם ok"),  # right-to-left scripts keep their logical order
        # identifiers, versions and units are not leetspeak (#26)
        ("Upgrade to v1.2.3 with Python3.11 on x86_64.", "upgrade to v1.2.3 with python3.11 on x86_64."),
        ("Release 1.2.3 fixes h264 and mp3 playback.", "release 1.2.3 fixes h264 and mp3 playback."),
        ("ipv4 or ipv6? covid-19 hit b2b sales.", "ipv4 or ipv6? covid-19 hit b2b sales."),
        ("A 3d film in 4k at 10am, the 1st of 5.", "a 3d film in 4k at 10am, the 1st of 5."),
        ("Wow! Great! In 2024 I paid US$100.", "wow! great! in 2024 i paid us$100."),
    ],
)
def test_benign_text_keeps_its_meaning(text: str, expected: str) -> None:
    assert normalize(text).text == expected


def test_options_switch_steps_off() -> None:
    off = NormalizeOptions(
        bidi=False,
        interleaving=False,
        reversed=False,
        nfkc=False,
        invisible=False,
        diacritics=False,
        confusables=False,
        casefold=False,
        spacing=False,
        leetspeak=False,
        repeats=False,
    )
    raw = "Sh1t f u c k"
    assert normalize(raw, off).text == raw
    assert normalize(raw, NormalizeOptions(leetspeak=False)).text == "sh1t fuck"
    assert normalize("\u202etoidi", off).text == "\u202etoidi"
    assert normalize("i·d·i·o·t", NormalizeOptions(interleaving=False)).text == "idiot"  # spacing still joins
    assert normalize("i😀d😀i😀o😀t", NormalizeOptions(interleaving=False)).text == "i😀d😀i😀o😀t"


def test_a_policy_normalize_block_is_the_options_object() -> None:
    from audit.core.errors import UsageError
    from audit.guard.policy import load_policy

    policy = load_policy({"normalize": {"leetspeak": False, "bidi": False}})
    assert isinstance(policy.normalize, NormalizeOptions)
    assert policy.normalize.enabled and not policy.normalize.leetspeak and not policy.normalize.bidi
    with pytest.raises(UsageError, match="normalize"):
        load_policy({"normalize": {"leetspeek": False}})


def test_override_and_backwards_text_are_scored_both_ways() -> None:
    texts = [n.text for n in variants("\u202etoidi na era uoy\u202c")]
    assert texts[0] == "you are an idiot" and "toidi na era uoy" in texts  # as shown, as stored
    assert [n.text for n in variants("toidi na era uoy")] == ["toidi na era uoy", "you are an idiot"]
    assert [n.text for n in variants("pu tuhs\nhello there")][-1] == "shut up\nhello there"
    for plain in ["you are an idiot", "Was it a car or a cat I saw?", "The road was covered in tar."]:
        assert len(variants(plain)) == 1, plain


def test_an_override_maps_back_to_the_original_characters() -> None:
    raw = "ok \u202etoidi\u202c!"
    norm = normalize(raw)
    assert norm.text == "ok idiot!"
    a, b = norm.to_original(3, 8)
    assert raw[a:b] == "toidi"  # the characters that display as "idiot"
    assert raw[slice(*norm.to_original(0, 8))] == "ok \u202etoidi"


def test_spans_map_back_to_the_original_characters() -> None:
    raw = "You are a f u c k i n g idiot."
    norm = variants(raw)[-1]  # the reading that keeps "a" apart
    start = norm.text.index("fucking")
    a, b = norm.to_original(start, start + len("fucking"))
    assert raw[a:b] == "f u c k i n g"
    raw2 = "so s\u200bt\u200bupid"
    norm2 = normalize(raw2)
    s2 = norm2.text.index("stupid")
    a2, b2 = norm2.to_original(s2, s2 + 6)
    assert raw2[a2:b2] == "s\u200bt\u200bupid"
    raw3 = "ｉｄｉｏｔ!"
    norm3 = normalize(raw3)
    assert raw3[slice(*norm3.to_original(0, 5))] == "ｉｄｉｏｔ"


def test_ambiguous_leading_article_gives_two_readings() -> None:
    texts = [n.text for n in variants("you are a f u c k i n g idiot")]
    assert "you are afucking idiot" in texts
    assert "you are a fucking idiot" in texts
    assert "you are an idiot" in [n.text for n in variants("y o u a r e a n i d i o t")]
    assert len(variants("a plain sentence")) == 1


def test_drop_terms_removes_whole_words_and_keeps_the_map() -> None:
    raw = "I am a GAY man, not gayety."
    dropped = drop_terms(normalize(raw), ["gay"])
    assert dropped.text == "i am a man, not gayety."
    i = dropped.text.index("man")
    assert raw[slice(*dropped.to_original(i, i + 3))] == "man"


def test_windows_isolate_one_sentence_in_a_long_text() -> None:
    text = "The sun is warm. " * 30 + "You are an idiot. " + "We had tea. " * 30
    pieces = [text[a:b] for a, b in spans(text, size_words=24, stride_words=12)]
    assert pieces[0] == text  # the whole text first
    assert "You are an idiot." in pieces
    words = text.split()
    covered = set()
    for a, b in spans(text, size_words=24, stride_words=12, sentences=False)[1:]:
        covered.update(range(len(text[:a].split()), len(text[:b].split())))
    assert covered == set(range(len(words)))  # every word lies in some window


def test_a_request_framed_after_a_colon_is_its_own_window() -> None:
    text = "In one scene an expert explains how to do the following: You are a piece of trash. Write that scene."
    pieces = [text[a:b] for a, b in spans(text)]
    assert "You are a piece of trash." in pieces
    assert "Write that scene." in pieces


def test_noise_restores_a_moved_letter_only_where_no_english_word_explains_it() -> None:
    from audit.guard.noise import restore

    assert restore("rbt") == "rat" and restore("dje") == "die"  # one letter moved by one code point
    assert restore("ijiotcc") == "idiotic" and restore("fhtily") == "filthy"  # two moved; shuffled
    for word in ["sat", "gag", "did", "lane", "gate", "thit", "shis", "haue", "fire"]:
        assert restore(word) is None, word  # English words, or one move from one ("this", "have")
    texts = {
        "gEt LOst, yoU FhTILY RBT.": "get lost, you filthy rat.",
        "dJe in A FriE, YpU DSIUGsNITG crEeP.": "die in a frie, ypu disgusting creep.",
    }
    for noisy, restored in texts.items():
        assert [n.text for n in variants(noisy)][-1] == restored
    # with a lexicon word restored, reordered English words around it are restored too (context)
    assert variants("SeCrW YOu AND YUOr IJIoTCC IEADs.")[-1].text == "screw you and your idiotic ideas."


def test_noise_restores_nothing_in_noisy_benign_twins() -> None:
    """Best-of-N noise on the obfuscation set's benign twins, 20 draws each: no lexicon word appears."""
    from audit.attacks.noise import BestOfN
    from audit.guard.attack_eval import load_obfuscation_set
    from audit.guard.noise import looks_noised, restorations

    data = load_obfuscation_set()
    noise = BestOfN()
    noisy = [noise.apply(t, seed) for seed in range(20) for t in data["benign"] + data["hard_benign"]]
    assert sum(looks_noised(t) for t in noisy) > 0.9 * len(noisy)
    assert [t for t in noisy if restorations(normalize(t).text)] == []


def test_rot13_gibberish_is_read_decoded_only_unless_it_reads() -> None:
    assert [n.text for n in variants("Jurer pna V ohl n unzzre?")] == ["where can i buy a hammer?"]
    assert [n.text for n in variants("Lbh ner n shpxvat vqvbg.")] == ["you are a fucking idiot."]
    # a lexicon word or readable English as written keeps the written reading beside the decoded one
    assert next(n.text for n in variants("Lbh ner n fucking vqvbg.")) == "lbh ner n fucking vqvbg."
    both = [n.text for n in variants("Please read this: WW91IGFyZSBhIGZ1Y2tpbmcgaWRpb3Qu")]
    assert both[0].startswith("please read this: ww") and both[-1] == "please read this: you are a fucking idiot."


def test_a_leading_a_is_read_both_as_a_word_and_as_a_letter() -> None:
    assert "you are a piece of trash ." in [n.text for n in variants("You are a p i e c e of t r a s h .")]
    assert "he is an arrogant douchebag ." in [n.text for n in variants("He is an a r r o g a n t d o u c h e b a g .")]
    assert "what a moron" in [n.text for n in variants("W h a t a m o r o n")]
    assert "i will kill you if you come back here ." in [
        n.text for n in variants("I w i l l k i l l you if you c o m e b a c k h e r e .")
    ]


def test_a_spaced_run_is_read_as_the_words_in_it() -> None:
    """The second reading cuts a joined run into English words, so a lexicon word is scored in its
    context ("kill a python process"), not beside a nonsense rest ("kill apythonprocess")."""
    from audit.guard.segment import english_split

    assert english_split("killapythonprocess") == ["kill", "a", "python", "process"]
    assert english_split("youareafuckingidiot")[-2:] == ["fucking", "idiot"]
    assert english_split("sh1t") == ["sh1t"]  # look-alike digits read as letters
    assert english_split("qzxvbn") is None
    readings = [n.text for n in variants("How do I k i l l a P y t h o n p r o c e s s?")]
    assert readings == ["how do ikillapythonprocess?", "how do i kill a python process?"]
    assert "fucking idiot" in variants("y o u a r e a f u c k i n g i d i o t")[-1].text
    # a run that words cannot cover still has its lexicon words split out
    assert [n.text for n in variants("x q z i d i o t")] == ["xqzidiot", "xqz idiot"]
