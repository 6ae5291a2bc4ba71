"""The scorer self-audit: identity calibration set, per-group false positives, neutralization."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from audit.core.errors import UsageError
from audit.scorers.base import Reference, Scorer, ScoreSpec, check_texts
from audit.scorers.calibration import load_calibration
from audit.scorers.neutralize import neutralize
from audit.scorers.self_audit import audit_scorer, run_self_audit

BIAS_AXES = {"gender", "race", "religion", "sexual_orientation", "nationality", "age", "disability"}


class FlagsWord(Scorer):
    """Test double: 1.0 when a given word appears, else 0.0."""

    name = "toxicity"
    version = "flags-word"
    outputs = (ScoreSpec("toxicity", 0.0, 1.0, "worse", "test"),)

    def __init__(self, words: set[str]) -> None:
        self.words = words

    def score(self, texts: Sequence[str], refs: Sequence[Reference] | None = None) -> list[dict[str, float | None]]:
        out: list[dict[str, float | None]] = []
        for t in check_texts(texts):
            toks = {w.strip(".,!?").lower() for w in t.split()}
            out.append({"toxicity": 1.0 if toks & self.words else 0.0})
        return out


def test_calibration_set_covers_the_bias_axes_in_several_forms() -> None:
    cal = load_calibration()
    assert set(cal.axes.values()) == BIAS_AXES
    by_group: dict[str, set[str]] = {}
    for s in cal.sentences:
        by_group.setdefault(s.group, set()).add(s.form)
    assert set(by_group) == set(cal.axes)
    for group, forms in by_group.items():
        assert {"noun", "people"} <= forms, group
        assert sum(s.group == group for s in cal.sentences) >= 6, group
    texts = {s.text for s in cal.sentences}
    assert {"I am a gay man.", "My neighbour is Muslim.", "She is a Black engineer."} <= texts
    assert len(cal.toxic_controls) >= 10 and len(cal.benign_controls) >= 10


def test_every_calibration_sentence_is_changed_by_neutralization() -> None:
    cal = load_calibration()
    unchanged = [s.text for s in cal.sentences if neutralize(s.text) == s.text]
    assert not unchanged
    # controls mention no group, so neutralization leaves them alone
    assert all(neutralize(t) == t for t in cal.toxic_controls + cal.benign_controls)


def test_self_audit_finds_a_scorer_that_flags_one_identity_word() -> None:
    report = audit_scorer(FlagsWord({"gay", "idiot", "fucking", "shit", "fuck"}), threshold=0.5)
    assert report["groups"]["gay"]["fpr"] > 0.5
    assert report["groups"]["christian"]["fpr"] == 0.0
    assert report["neutralized"]["gay"]["fpr"] == 0.0
    assert report["fpr_gap"]["raw"]["max_group"] == "gay"
    assert report["fpr_gap"]["raw"]["estimate"] == report["groups"]["gay"]["fpr"]
    assert report["fpr_gap"]["neutralized"]["estimate"] == 0.0
    assert report["controls"]["benign_mean"] == 0.0


def test_self_audit_exposes_a_constant_scorer_through_its_controls() -> None:
    class Constant(FlagsWord):
        def score(self, texts, refs=None):
            return [{"toxicity": 0.7} for _ in check_texts(texts)]

    report = audit_scorer(Constant(set()), threshold=0.5)
    assert report["controls"]["toxic_mean"] == pytest.approx(report["controls"]["benign_mean"])
    assert report["controls"]["benign_fpr"] == 1.0


def test_embedded_toxicity_self_audit_shape_and_known_bias() -> None:
    report = run_self_audit()
    assert {"scorer", "version", "threshold", "groups", "neutralized", "controls", "fpr_gap", "axes"} <= set(report)
    assert report["scorer"] == "toxicity" and report["threshold"] == 0.5
    assert report["version"].startswith("alt-profanity-check-")
    for section in ("groups", "neutralized"):
        for g, row in report[section].items():
            assert set(row) == {"fpr", "mean", "n"}, g
            assert 0.0 <= row["fpr"] <= 1.0 and 0.0 <= row["mean"] <= 1.0 and row["n"] >= 6
    c = report["controls"]
    assert c["toxic_mean"] > 0.8 > 0.2 > c["benign_mean"]
    assert report["groups"]["gay"]["fpr"] > 0.3  # the documented false positive on "gay"
    assert report["fpr_gap"]["neutralized"]["estimate"] < report["fpr_gap"]["raw"]["estimate"]


def test_self_audit_threshold_and_copies() -> None:
    low = run_self_audit("toxicity", threshold=0.0)
    assert all(row["fpr"] == 1.0 for row in low["groups"].values())
    high = run_self_audit("toxicity", threshold=1.0)
    assert all(row["fpr"] == 0.0 for row in high["groups"].values())
    first = run_self_audit()
    first["groups"].clear()
    assert run_self_audit()["groups"]
    with pytest.raises(UsageError, match=r"within 0\.\.1"):
        run_self_audit(threshold=2.0)


def test_self_audit_refuses_a_scorer_without_a_worse_direction() -> None:
    with pytest.raises(UsageError, match="no output where higher is worse"):
        run_self_audit("refusal")


def test_self_audit_of_neutralized_scorer_option() -> None:
    report = run_self_audit("toxicity", neutralize_identity=True)
    assert "+neutralized-" in report["version"]
    assert report["fpr_gap"]["raw"]["estimate"] == report["fpr_gap"]["neutralized"]["estimate"]
