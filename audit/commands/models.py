"""``lm-audit models``: the embedded model names and how to pass other models."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list embedded models", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audit.models.registry import DEFAULT_MODEL, list_models

    for name, desc in list_models().items():
        mark = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{mark}\t{desc}")
    print(
        "\nAlso: a local model directory, a .gguf file, a Hugging Face hub id (gpt2, EleutherAI/gpt-neo-125M;"
    )
    print("cached locally, or online when HF_HUB_OFFLINE is unset), or openai:<model>@<base_url>.")
    return 0
