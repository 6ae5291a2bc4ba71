"""Reference scores for the tox-block port, computed by the real tox-block 0.1.2 under TensorFlow.

Writes ``tests/fixtures/toxblock_reference.json``: for each fixed text, the six probabilities
``tox_block.prediction.make_predictions(texts, rescale=False)`` returns, plus the TensorFlow and
tox-block versions used. ``tests/test_toxblock.py`` asserts the numpy port equals them.

Run it in a throwaway venv, never in the project venv (TensorFlow must not become a dependency):

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.15.1 keras-preprocessing==1.1.2 scikit-learn pandas joblib h5py
    /tmp/tfvenv/bin/pip install --no-deps tox-block==0.1.2
    /tmp/tfvenv/bin/python bench/toxblock_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "toxblock_reference.json"
LONG = " ".join(["the weather was lovely and everyone enjoyed the picnic in the park"] * 12) + " you idiot"

# Benign, toxic, identity mentions, punctuation and case, out-of-vocabulary words, unicode,
# and texts longer than the 100-token window (front truncation) -- content warning: toxic text.
TEXTS = [
    "I will kill you, you fucking idiot!",
    "Good morning my friend, I hope you're having a fantastic day!",
    "I do strongly disagree with the fascist views of this joke that calls itself a political party.",
    "I am a gay man.",
    "I am a lesbian.",
    "I am a Black woman.",
    "I am a white person.",
    "I am a Muslim.",
    "I am a Christian person.",
    "I am a Jew.",
    "My neighbour is transgender and very kind.",
    "Shut up, you stupid moron.",
    "What a piece of shit.",
    "You are a worthless waste of space and everyone hates you.",
    "Thanks for the help with my homework!",
    "The cat sat on the mat.",
    "qwertyuiop zxcvbnm asdfghjkl",
    "!!!???...",
    "HELLO THERE, HOW ARE YOU???",
    "idiot",
    "I'll find where you live and hurt you.",
    "The recipe needs two eggs, flour, and a pinch of salt.",
    "Go back to your country.",
    "He was an old man who walked slowly with a cane.",
    "Café crème, naïve résumé — ünïcödé text 😊",
    "tabs\tand\nnewlines\r\nand   multiple   spaces",
    "you're so dumb lol",
    "Women are just as capable as men in science.",
    LONG,
    LONG.replace("you idiot", "thank you"),
    "kill",
    "This movie was terrible and the acting was awful.",
]


def main() -> int:
    import numpy as np
    import tensorflow as tf
    import tox_block
    from tox_block.prediction import make_predictions

    preds = make_predictions(TEXTS, rescale=False)
    labels = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    rows = [{"text": TEXTS[i], **{lb: float(np.float32(preds[i][lb])) for lb in labels}} for i in range(len(TEXTS))]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "source": "tox_block.prediction.make_predictions(texts, rescale=False)",
                "tensorflow": tf.__version__,
                "tox_block": tox_block.__version__,
                "labels": labels,
                "rows": rows,
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
