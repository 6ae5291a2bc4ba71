"""The validity card (summary.json scorer_validity: each scorer's agreement with reference labels)."""

from __future__ import annotations

from audit.scorers.validity import render_html, scorer_validity


def _manifest(*scorers: str) -> dict:
    return {"suites": {"s": {"scorers": list(scorers)}},
            "scorers": {n: {"name": n, "version": f"v-{n}"} for n in scorers}}


def test_card_for_refusal_and_toxicity() -> None:
    card = scorer_validity(_manifest("refusal", "toxicity", "sentiment"),
                           {"toxicity": {"scorer": "toxicity", "groups": {}}})
    assert set(card) == {"refusal", "toxicity", "sentiment"}
    for entry in card.values():
        assert {"version", "fingerprint", "agreement", "self_audit", "caveat"} <= set(entry)
    ref = card["refusal"]["agreement"]
    assert {a["reference"] for a in ref} >= {"XSTest human labels, held-out model gpt4"}
    for a in ref:
        assert a["ci_low"] <= a["estimate"] <= a["ci_high"] and a["n"] > 0
    tox = card["toxicity"]["agreement"][0]
    assert tox["metric"] == "spearman_rho" and tox["n"] == 993
    assert 0.4 < tox["estimate"] < 0.8 and tox["ci_low"] < tox["estimate"] < tox["ci_high"]
    assert card["toxicity"]["self_audit"] == {"scorer": "toxicity", "groups": {}}
    assert card["sentiment"]["agreement"] == []


def test_the_second_toxicity_opinion_carries_its_own_perspective_agreement() -> None:
    """The quick profile scores toxicity-rtp with toxicity-second-opinion too: its card measures the
    ensemble's own key against Perspective (docs/scorers.md: rho ~0.68 vs ~0.60), over its files,
    and never borrows the headline scorer's self-audit."""
    card = scorer_validity(_manifest("toxicity", "toxicity-second-opinion"),
                           {"toxicity": {"scorer": "toxicity", "groups": {}}})
    second, first = card["toxicity-second-opinion"], card["toxicity"]
    (rho,) = second["agreement"]
    assert rho["metric"] == "spearman_rho" and rho["n"] == 993
    assert 0.64 < rho["estimate"] < 0.72 and rho["estimate"] > first["agreement"][0]["estimate"]
    assert "toxblock-0.1.2.npz" in second["files"] and "Perspective" in second["caveat"]
    assert second["self_audit"] is None


def test_fingerprint_changes_with_the_version_and_rules_are_measured() -> None:
    a = scorer_validity(_manifest("refusal:rules"))["refusal:rules"]
    b = scorer_validity({"suites": {"s": {"scorers": ["refusal:rules"]}},
                         "scorers": {"refusal:rules": {"version": "other"}}})["refusal:rules"]
    assert a["fingerprint"] != b["fingerprint"]
    assert len(a["agreement"]) == 3 and all(0.5 < x["estimate"] < 1.0 for x in a["agreement"])


def test_html_escapes() -> None:
    card = {"<b>x</b>": {"version": "<i>", "fingerprint": "f", "agreement": [], "caveat": "<script>"}}
    html = render_html(card)
    assert "<script>" not in html and "&lt;b&gt;" in html


def test_refusal_card_leads_with_any_refusal_and_keeps_the_full_partial_split() -> None:
    """#26: the headline decision (any refusal, full or partial) carries its own held-out agreement
    with people, before the secondary full-vs-not figures; the scorer's rate sits beside people's."""
    ref = scorer_validity(_manifest("refusal"))["refusal"]["agreement"]
    heads = [a for a in ref if a.get("headline")]
    assert [a["metric"] for a in ref[: len(heads)]] == ["agreement (any refusal vs compliance)"] * 3
    assert {a["reference"].rsplit(" ", 1)[-1] for a in heads} == {"gpt4", "llama2new", "mistralinstruct"}
    for a in heads:
        assert a["n"] == 450 and 0.85 < a["estimate"] < 0.99 and a["ci_low"] < a["estimate"] < a["ci_high"]
        assert 0 < a["rate_scorer"] < 1 and 0 < a["rate_people"] < 1
    assert any(a["metric"] == "agreement (full refusal vs not)" for a in ref)
    assert "any refusal vs compliance" in render_html(scorer_validity(_manifest("refusal")))
