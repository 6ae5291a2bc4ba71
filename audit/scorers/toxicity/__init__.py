"""Toxicity scorers: the factory behind ``get_scorer("toxicity", backend=...)``.

Backends, one module each: ``common`` (the shared score spec and the embedded alt-profanity-check
scorer, an HF-classifier scorer), ``toxblock`` (tox-block in numpy), ``ensemble`` (tox-block +
alt-profanity-check, the second opinion), ``detoxify_backend`` (Detoxify checkpoints).
"""

from __future__ import annotations

from typing import Any

from audit.core.errors import UsageError
from audit.scorers.base import Scorer
from audit.scorers.toxicity.common import EMBEDDED_ALIASES, ClassifierToxicity, ProfanityCheckToxicity


def build_toxicity(
    backend: str = "embedded",
    neutralize_identity: bool | str = False,
    placeholder: str | None = None,
    **options: Any,
) -> Scorer:
    """Factory behind ``get_scorer("toxicity", ...)``: pick the backend, optionally neutralize."""
    from audit.scorers.options import as_bool

    backend = (backend or "embedded").lower()
    scorer: Scorer
    if backend in EMBEDDED_ALIASES:
        if options:
            raise UsageError(
                f"toxicity (embedded alt-profanity-check) takes no option {', '.join(sorted(options))}; "
                "options: backend, neutralize_identity, placeholder"
            )
        scorer = ProfanityCheckToxicity()
    elif backend == "detoxify":
        from audit.scorers.toxicity.detoxify_backend import DetoxifyToxicity

        scorer = DetoxifyToxicity(**options)
    elif backend in ("hf-classifier", "hf"):
        scorer = ClassifierToxicity(**options)
    elif backend in ("tox-block", "toxblock"):
        from audit.scorers.toxicity.toxblock import ToxBlockToxicity

        scorer = ToxBlockToxicity(**options)
    elif backend == "ensemble":
        from audit.scorers.toxicity.ensemble import EnsembleToxicity

        scorer = EnsembleToxicity(**options)
    else:
        raise UsageError(
            f"toxicity: unknown backend '{backend}' (known: embedded, tox-block, ensemble, detoxify, hf-classifier)"
        )
    if as_bool(neutralize_identity, "neutralize_identity"):
        from audit.scorers.neutralize import IdentityNeutralized

        scorer = IdentityNeutralized(scorer, placeholder=placeholder)
    elif placeholder is not None:
        raise UsageError("toxicity: placeholder= only applies with neutralize_identity=True")
    return scorer
