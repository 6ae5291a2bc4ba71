"""Filter thresholds inside the scorer's declared range (issue #27, item 4): a threshold outside
the range (1.5, -1) is refused; one at an end (0, 1) must say what it means with ``block_all`` or
``allow_all``, and then does exactly that; errors are one line naming the file and line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from audit.core.errors import UsageError
from audit.guard import Check, GatedGenerator, Policy
from audit.scorers.base import Scorer, ScoreSpec

TOXIC = [f"you are a stupid idiot number {i}" for i in range(10)]
BENIGN = ["Have a lovely day.", "The weather is mild today."]


class Keyword(Scorer):
    """0.99 for texts with a bad word, 0.01 otherwise; declared range 0..1 (like toxicity)."""

    name = "kw"
    outputs = (ScoreSpec("toxicity", 0.0, 1.0, "worse", "keyword"),)

    def score(self, texts: Sequence[str], refs=None):  # type: ignore[no-untyped-def]
        return [{"toxicity": 0.99 if re.search(r"\b(stupid|idiot)\b", t) else 0.01} for t in texts]


class Undeclared(Keyword):
    outputs = ()


def _gate(threshold: float, action: str = "block", direction: str = "above", scorer: Scorer | None = None) -> GatedGenerator:
    check = Check(name="tox", scorer=scorer or Keyword(), threshold=threshold, action=action, direction=direction)
    return GatedGenerator(None, Policy(name="p", output_checks=[check]))


@pytest.mark.parametrize("threshold", [1.5, -1, 1.0000001, 2])
def test_a_threshold_outside_the_range_is_refused_whatever_the_action(threshold: float) -> None:
    for action in ("block", "block_all", "allow_all"):
        with pytest.raises(UsageError, match=r"policy 'p': output_checks\.0\.threshold: .* is outside toxicity's range 0\.\.1"):
            _gate(threshold, action)


@pytest.mark.parametrize(("threshold", "direction", "means"), [
    (0, "above", "block_all"), (1, "above", "allow_all"), (0, "below", "allow_all"), (1, "below", "block_all"),
])
def test_a_threshold_at_an_end_needs_the_explicit_action(threshold: float, direction: str, means: str) -> None:
    with pytest.raises(UsageError, match=rf"is an end of toxicity's range 0\.\.1: .*say so with action: {means}"):
        _gate(threshold, "block", direction)
    other = "allow_all" if means == "block_all" else "block_all"
    with pytest.raises(UsageError, match=rf"output_checks\.0\.action: '{other}' is for a threshold at the end"):
        _gate(threshold, other, direction)
    gate = _gate(threshold, means, direction)  # explicit: accepted, and it does what it says
    for text in TOXIC + BENIGN:
        d = gate.moderate(text).decision
        assert d.allowed is (means == "allow_all"), (text, d.reason)
        if means == "block_all":
            assert d.action == "block" and "blocks every text (action block_all)" in d.reason
    gate.close()


def test_explicit_actions_are_refused_inside_the_range_and_normal_thresholds_work() -> None:
    with pytest.raises(UsageError, match=r"'block_all' is for a threshold at the end of toxicity's range 0\.\.1 "
                                         r"where it holds: set threshold: 0 \(direction above\)"):
        _gate(0.5, "block_all")
    gate = _gate(0.5)
    assert [gate.moderate(t).decision.allowed for t in TOXIC + BENIGN] == [False] * 10 + [True] * 2
    gate.close()


def test_a_scorer_without_a_declared_range_is_refused() -> None:
    with pytest.raises(UsageError, match=r"output_checks\.0\.scorer: scorer 'kw' declares no range for 'kw'"):
        _gate(0.5, scorer=Undeclared())


def test_term_lists_score_0_to_1_and_input_checks_are_checked_too() -> None:
    with pytest.raises(UsageError, match=r"output_checks\.0\.threshold: 1 is an end of terms's range 0\.\.1"):
        GatedGenerator(None, Policy(output_checks=[Check(terms=["idiot"], threshold=1.0, action="redact")]))
    with pytest.raises(UsageError, match=r"input_checks\.0\.threshold: -1 is outside"):
        GatedGenerator(None, Policy(input_checks=[Check(scorer=Keyword(), threshold=-1)]))
    gate = GatedGenerator(None, Policy(input_checks=[Check(scorer=Keyword(), threshold=0, action="block_all")]))
    assert not gate.moderate("Have a lovely day.", stage="input").decision.allowed
    gate.close()


@pytest.mark.parametrize(("threshold", "action", "message"), [
    ("1.5", "block", "output_checks.0.threshold: 1.5 is outside toxicity's range 0..1"),
    ("-1", "block", "output_checks.0.threshold: -1 is outside toxicity's range 0..1"),
    ("0", "regenerate", "output_checks.0.threshold: 0 is an end of toxicity's range 0..1: this check flags "
                        "every text; say so with action: block_all"),
    ("1", "block", "output_checks.0.threshold: 1 is an end of toxicity's range 0..1: this check flags almost "
                   "no text; say so with action: allow_all"),
])
def test_yaml_policies_with_the_real_toxicity_scorer_name_file_and_line(
    tmp_path: Path, threshold: str, action: str, message: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"name: ranged\noutput_checks:\n  - name: tox\n    scorer: toxicity\n"
                    f"    threshold: {threshold}\n    action: {action}\n")
    with pytest.raises(UsageError) as err:
        GatedGenerator(None, str(path))
    assert str(err.value).startswith(f"{path}:5: {message}")  # line 5: the threshold


def test_the_command_line_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("output_checks:\n  - {name: tox, scorer: toxicity, threshold: 1.0}\n")
    r = subprocess.run(
        [sys.executable, "-m", "audit", "generate", "--model", "tiny-random-gpt2", "--policy", str(path), "hi"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and f"{path}:2: output_checks.0.threshold: 1 is an end" in r.stderr


def test_the_shipped_policies_are_inside_their_ranges() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in [root / "audit" / "guard" / "default_policy.yaml", *sorted((root / "probes" / "policies").glob("filter-*.yaml"))]:
        GatedGenerator(None, str(path)).close()  # raises on a threshold at or past an end
