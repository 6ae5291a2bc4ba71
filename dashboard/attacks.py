"""The misuse page's "under attack" section, from summary.json's ``attacks`` (computed by
audit/summary/attacks.py): per technique, attack success with its CI beside the undetermined rate,
the paired change against the plain prompt (McNemar), benign-twin over-refusal and hit@k; then the
worst attacked prompts with their decoded answers. Model text is shown as text, with invisible and
right-to-left characters written out (audit.report.attacks.visible).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from audit.report.attacks import notes, technique_rows, visible
from dashboard import ui
from dashboard.loading import Run


def attacks_of(run: Run, suite: str) -> dict[str, Any] | None:
    s = run.suites_summary.get(suite)
    section = s.get("attacks") if isinstance(s, dict) else None
    return section if isinstance(section, dict) else None


def attack_section(run: Run, suite: str) -> None:
    section = attacks_of(run, suite)
    if section is None:
        return
    st.subheader(f"{suite}: under attack")
    for note in notes(section):
        st.caption(note)
    ui.table(pd.DataFrame(technique_rows(section)))
    worst = [w for w in section.get("worst") or [] if isinstance(w, dict)]
    if worst:
        st.markdown("**Worst attacked prompts**: complied with, most confidently first (content warning).")
    for i, w in enumerate(worst):
        with st.expander(f"{i + 1}. {visible(w.get('technique'))}: refusal {w.get('refusal')}"):
            ui.text_block("attacked prompt", visible(w.get("prompt")))
            ui.text_block("completion", visible(w.get("completion")))
            ui.text_block("decoded answer (what was scored)", visible(w.get("answer") or w.get("completion")))
