"""Gated generation: try the moderation filter on a prompt, with the policy editable on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
import yaml

from dashboard import ui
from dashboard.policy_guard import file_settings

MODELS = ["tiny-random-gpt2", "tiny-random-gpt-neo", "smollm2-135m"]

st.title("Gated generation")
st.write(
    "Type a prompt: the model's raw completion, what the filter lets through, and why. The policy "
    "below is the filter's YAML (the same format as `lm-audit generate --policy`); edit it and "
    "generate again. Nothing is saved, and settings that name files (such as `log_path`) are refused."
)

try:
    from audit.guard import GatedGenerator, load_policy
    from audit.guard.policy import DEFAULT_POLICY_PATH, EXAMPLE_POLICY_DIR
except ImportError as exc:  # the filter is an optional part of a partial install
    st.error(f"The gated generation filter is not available in this installation: {exc}")
    st.stop()


@st.cache_resource(max_entries=2, show_spinner="Loading the model ...")
def get_model(name: str) -> Any:
    from audit.models.registry import load_model

    return load_model(name)


@st.cache_resource(max_entries=4, show_spinner="Building the filter ...")
def get_gate(model_name: str, policy_yaml: str) -> Any:
    spec = yaml.safe_load(policy_yaml)
    if not isinstance(spec, dict):
        raise ValueError("the policy must be a YAML mapping")
    named = file_settings(spec)
    if named:
        raise ValueError(
            f"the playground cannot use settings that name files ({', '.join(named)}); "
            "use `lm-audit generate --policy FILE` for those"
        )
    return GatedGenerator(get_model(model_name), load_policy(spec))


def policy_presets() -> dict[str, str]:
    presets = {"default": Path(DEFAULT_POLICY_PATH).read_text(encoding="utf-8")}
    for p in sorted(Path(EXAMPLE_POLICY_DIR).glob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        try:
            load_policy(yaml.safe_load(text))  # gate policies (ci.yaml) live in the same folder
        except Exception:
            continue
        presets.setdefault(p.stem, text)
    return presets


presets = policy_presets()
c1, c2 = st.columns([1, 1])
model_name = c1.selectbox("Model", MODELS, key="pg-model", help="random-weight models answer with noise; smollm2-135m is a real model (about 20 s to load the first time)")
preset = c2.selectbox("Start from policy", list(presets), key="pg-preset")
if st.session_state.get("pg-preset-loaded") != preset:
    st.session_state["pg-policy"] = presets[preset]
    st.session_state["pg-preset-loaded"] = preset
policy_text = st.text_area("Policy (YAML)", key="pg-policy", height=260)

with st.form("pg-form"):
    prompt = st.text_area("Prompt", key="pg-prompt", value="Tell me about my neighbours.", max_chars=4000)
    f1, f2, f3 = st.columns(3)
    max_new_tokens = f1.slider("Max new tokens", 4, 128, 24, key="pg-tokens")
    temperature = f2.slider("Temperature (0 = greedy)", 0.0, 1.5, 0.7, 0.1, key="pg-temp")
    seed = f3.number_input("Seed", 0, 2**31 - 1, 0, key="pg-seed")
    submitted = st.form_submit_button("Generate", type="primary")

if submitted:
    from audit.core.errors import UsageError
    from audit.core.types import GenParams

    try:
        gate = get_gate(model_name, policy_text)
    except (UsageError, ValueError) as exc:
        st.error(f"Policy or model problem: {exc}")
        st.stop()
    except Exception as exc:  # a YAML error, a scorer that cannot load here
        st.error(f"Could not build the filter: {type(exc).__name__}: {exc}")
        st.stop()
    params = GenParams(max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_p=0.9,
                       do_sample=temperature > 0)
    with st.spinner("Generating ..."):
        try:
            result = gate.generate(prompt, params=params, seed=int(seed))
        except Exception as exc:
            st.error(f"Generation failed: {type(exc).__name__}: {exc}")
            st.stop()
    st.session_state["pg-result"] = result

result = st.session_state.get("pg-result")
if result is not None:
    d = result.decision
    if d.allowed and d.action == "none":
        st.success("ALLOWED: passed all checks")
    elif d.allowed:
        st.warning(f"ALLOWED after action '{d.action}' at the {d.stage} stage")
    else:
        st.error(f"BLOCKED at the {d.stage} stage")
    st.caption("reason")
    st.text(d.reason)
    left, right = st.columns(2)
    with left:
        ui.text_block("raw completion (unfiltered; never show it to end users)", result.raw_text if result.raw_text is not None else "(nothing was generated)")
    with right:
        ui.text_block("what the filter returns", result.text)
    st.subheader("Checks")
    checks = pd.DataFrame([c.to_dict() for c in d.checks])
    if checks.empty:
        ui.missing("The policy has no checks.")
    else:
        keep = ["stage", "name", "scorer", "key", "score", "threshold", "direction", "flagged", "action", "error", "latency_s"]
        ui.table(checks[[c for c in keep if c in checks.columns]])
    if d.attempts:
        st.caption("generation attempts")
        ui.table(pd.DataFrame(d.attempts).astype(str))
    lat = d.latency
    cols = st.columns(3)
    cols[0].metric("generate", f"{lat.get('generate_s', 0) * 1000:.0f} ms")
    cols[1].metric("filter", f"{lat.get('filter_s', 0) * 1000:.0f} ms")
    cols[2].metric("total", f"{lat.get('total_s', 0) * 1000:.0f} ms")
    with st.expander("decision as JSON"):
        st.json(d.to_dict())
