"""Attack transforms: adversarial rewritings of a request (encodings, character noise, framings).

An attack turns a harmful (or, for benign twins, a safe) prompt into an attacked prompt; a run
with ``--attacks`` sends both and pairs them, and the summary reports per-technique success with
CIs, the paired change against the plain prompt and hit@k. The moderation filter's ``gate-eval
--attacks`` applies the same transforms to toxic text.

- ``audit.attacks.base``: the ``Attack`` interface (``apply``, ``decode``, ``prompt``, ``read_answer``);
- ``audit.attacks.registry``: ``get_attack``, ``resolve_attacks``, ``available`` (plugins through
  the ``lm_audit.attacks`` entry-point group);
- ``audit.attacks.reading``: when an answer can be read (the *undetermined* outcome);
- one module per transform or family.
"""

from audit.attacks.base import Attack
from audit.attacks.registry import available, get_attack, resolve_attacks

__all__ = ["Attack", "available", "get_attack", "resolve_attacks"]
