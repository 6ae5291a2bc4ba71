"""Writing into an existing Hugging Face model card (README.md): only the ``model-index`` key of
its YAML front matter and the text between our ``<!-- lm-audit:begin ... -->`` and
``<!-- lm-audit:end -->`` markers change (the section is appended the first time); every other byte
of the card is kept. Results of other tools in ``model-index`` stay; ours are named ``lm-audit: ...``.
"""

from __future__ import annotations

from typing import Any

import yaml

from audit.core.errors import UsageError

BEGIN = "<!-- lm-audit:begin"
END = "<!-- lm-audit:end -->"
TASK_PREFIX = "lm-audit: "


def dump_yaml(obj: Any) -> str:
    """YAML as the Hub's files are written: keys in order, unicode as is, no line wrapping."""
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=4096)


def _split_card(text: str) -> tuple[str | None, str]:
    """(front-matter YAML text or None, the rest) of a model card."""
    if not text.startswith("---"):
        return None, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n") == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    raise UsageError("model card: the YAML front matter opened with '---' is never closed")


def _replace_key(meta: str, key: str, block: str) -> str:
    """``meta`` with the top-level ``key:`` block replaced by ``block`` (appended if absent)."""
    lines = meta.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.startswith(f"{key}:")), None)
    if start is None:
        sep = "" if not meta or meta.endswith("\n") else "\n"
        return meta + sep + block
    end = start + 1
    while end < len(lines) and (lines[end][:1] in (" ", "\t", "-", "\n", "\r") or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():  # keep blank lines before the next key
        end -= 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def merge_card(text: str, section: str, results: list[dict[str, Any]], model_name: str) -> str:
    """A model card with our section and model-index results put in; everything else unchanged."""
    meta_text, body = _split_card(text)
    try:
        meta = yaml.safe_load(meta_text) if meta_text else {}
    except yaml.YAMLError as exc:
        raise UsageError(f"model card: its YAML front matter does not parse ({str(exc).splitlines()[0]})") from None
    meta = meta or {}
    if not isinstance(meta, dict):
        raise UsageError("model card: its YAML front matter is not a mapping")
    index = meta.get("model-index") or []
    if not isinstance(index, list):
        raise UsageError("model card: 'model-index' is not a list")
    index = [dict(m) for m in index if isinstance(m, dict)]
    if not index:
        index = [{"name": model_name, "results": []}]
    target = index[0]
    kept = [
        r for r in target.get("results") or []
        if not str(((r or {}).get("task") or {}).get("name", "")).startswith(TASK_PREFIX)
    ]
    target["results"] = kept + results
    block = dump_yaml({"model-index": index})
    new_meta = _replace_key(meta_text or "", "model-index", block)
    check = yaml.safe_load(new_meta) or {}
    if {k: v for k, v in check.items() if k != "model-index"} != {k: v for k, v in meta.items() if k != "model-index"}:
        raise UsageError("model card: could not replace 'model-index' without touching other metadata")
    if BEGIN in body:
        head, _, rest = body.partition(BEGIN)
        if END not in rest:
            raise UsageError(f"model card: '{BEGIN} ...' has no matching '{END}'")
        tail = rest.partition(END)[2]
        tail = tail[1:] if tail.startswith("\n") else tail
        body = head + section + tail
    else:
        body = body + ("" if body.endswith("\n") or not body else "\n") + "\n" + section
    return f"---\n{new_meta}---\n{body}"
