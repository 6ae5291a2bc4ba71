"""Convert the tox-block 0.1.2 wheel (PyPI, MIT, Pascal Bliem) into the compact file that
``audit/scorers/toxicity/toxblock.py`` loads without TensorFlow: ``audit/scorers/data/toxblock-0.1.2.npz``.

The wheel ships a Keras 2.2.4-tf HDF5 model (``trained_models/lstm_model_0.1.2.h5``: embedding
20000 x 50, bidirectional LSTM 2 x 50 units with hard-sigmoid gates, global max pool, dense 50 relu,
dense 6 sigmoid) and a joblib pickle of its ``TokenSequencer`` (a keras_preprocessing ``Tokenizer``
with ``num_words=20000`` and ``maxlen=100``). This script reads the weights with h5py and the
tokenizer's word index with a restricted unpickler that maps the Keras/tox-block classes to inert
stand-ins (so neither TensorFlow nor keras_preprocessing is needed), keeps the 19,999 words the model
can see (index < num_words) and writes all arrays, float32 as stored, to one ``.npz`` (no pickled
objects: ``np.load(..., allow_pickle=False)`` reads it). It prints the sha256 of the output, which
``audit/scorers/toxicity/toxblock.py`` pins (``WEIGHTS_SHA256``).

Usage (needs h5py, e.g. in a throwaway venv; never add TensorFlow to the project venv):

    pip download --no-deps tox-block==0.1.2 -d /tmp/tb
    /tmp/tfvenv/bin/python bench/convert_toxblock.py /tmp/tb/tox_block-0.1.2-py3-none-any.whl

The wheel's sha256 is checked against ``WHEEL_SHA256`` below (PyPI's published digest of the file
this conversion was made from).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "audit" / "scorers" / "data" / "toxblock-0.1.2.npz"
WHEEL_SHA256 = "ed3a934f77d456f5324a6ae1b55bd9a3d404f6ebdb30aedad73dea5a2f01b7ed"  # sha256 of the PyPI file tox_block-0.1.2-py3-none-any.whl
H5_PATH = "tox_block/trained_models/lstm_model_0.1.2.h5"
ENCODER_PATH = "tox_block/trained_models/encoder_0.1.2.pkl"
LAYERS = {
    "embedding": "embedding/embedding/embeddings:0",
    "fw_kernel": "bidirectional/bidirectional/forward_lstm/kernel:0",
    "fw_recurrent": "bidirectional/bidirectional/forward_lstm/recurrent_kernel:0",
    "fw_bias": "bidirectional/bidirectional/forward_lstm/bias:0",
    "bw_kernel": "bidirectional/bidirectional/backward_lstm/kernel:0",
    "bw_recurrent": "bidirectional/bidirectional/backward_lstm/recurrent_kernel:0",
    "bw_bias": "bidirectional/bidirectional/backward_lstm/bias:0",
    "dense_kernel": "dense/dense/kernel:0",
    "dense_bias": "dense/dense/bias:0",
    "out_kernel": "dense_1/dense_1/kernel:0",
    "out_bias": "dense_1/dense_1/bias:0",
}


class _Inert:
    """Stand-in for a pickled class: keeps the instance state, runs no code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class _Unpickler(pickle.Unpickler):
    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("builtins", "int"),
        ("builtins", "list"),
        ("builtins", "dict"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        if module.startswith(("keras_preprocessing", "tox_block", "tensorflow", "keras")):
            return type(name, (_Inert,), {})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert(wheel: Path) -> dict[str, Any]:
    import h5py

    raw = wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        h5_bytes = zf.read(H5_PATH)
        enc_bytes = zf.read(ENCODER_PATH)
    with h5py.File(io.BytesIO(h5_bytes), "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = {k: np.asarray(f["model_weights"][v], dtype=np.float32) for k, v in LAYERS.items()}
    lstm = config["config"]["layers"][2]["config"]["layer"]["config"]
    assert lstm["recurrent_activation"] == "hard_sigmoid" and lstm["activation"] == "tanh", lstm
    sequencer = _Unpickler(io.BytesIO(enc_bytes)).load()
    tok = sequencer.tokenizer
    num_words, maxlen = int(tok.num_words), int(sequencer.max_sequence_length)
    assert tok.lower and tok.split == " " and not tok.char_level and tok.oov_token is None
    vocab = [""] * num_words  # index 0 is padding; the model sees indices 1..num_words-1
    for word, i in tok.word_index.items():
        if 0 < i < num_words:
            vocab[i] = word
    assert all(vocab[1:]), "word index has gaps below num_words"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        vocab=np.array(vocab),
        filters=np.array(tok.filters),
        maxlen=np.array(maxlen),
        **weights,
    )
    return {
        "wheel": wheel.name,
        "wheel_sha256": _sha256(raw),
        "h5_sha256": _sha256(h5_bytes),
        "encoder_sha256": _sha256(enc_bytes),
        "out": str(OUT.relative_to(ROOT)),
        "out_sha256": _sha256(OUT.read_bytes()),
        "out_bytes": OUT.stat().st_size,
        "num_words": num_words,
        "maxlen": maxlen,
        "filters": tok.filters,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path, help="tox_block-0.1.2-py3-none-any.whl")
    args = ap.parse_args()
    info = convert(args.wheel)
    if info["wheel_sha256"] != WHEEL_SHA256:
        print(f"note: wheel sha256 {info['wheel_sha256']} differs from the pinned {WHEEL_SHA256}", file=sys.stderr)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
