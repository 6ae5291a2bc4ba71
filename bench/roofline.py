"""The machine's compute roofline for the benchmarks: the FLOP/s of a large fp32 matrix product.

Two libraries in the torch wheel multiply fp32 matrices on a CPU: MKL (what ``a @ b`` reaches) and
oneDNN (what the lean decoder uses, ``audit/models/fast_decode.py``). Which is faster depends on the
CPU (on this project's AMD EPYC, oneDNN by about 1.3x at 2048²), so the roofline is the faster of
the two: a decoder that switched library must not also be judged against the slower one.
"""

from __future__ import annotations

import time


def sgemm_flops(size: int = 2048, repeat: int = 5) -> dict[str, float]:
    """FLOP/s of a ``size``² fp32 product (best of ``repeat``) per library, and ``best``, the faster."""
    import torch

    from audit.models.fast_decode import onednn_linear

    a, b = torch.randn(size, size), torch.randn(size, size)
    kernels = {"mkl": lambda: a @ b}
    dnn = onednn_linear()
    if dnn is not None:
        bt = b.t().contiguous()  # linear(x, w) = x @ w.T: the same product as a @ b
        kernels["onednn"] = lambda: dnn(a, bt)
    out = {}
    for name, fn in kernels.items():
        fn()  # warm-up: first calls allocate and pick kernels
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        out[name] = 2 * size**3 / best
    out["best"] = max(out.values())
    return out


def describe(flops: dict[str, float]) -> str:
    """``mkl 143, onednn 185 GFLOP/s``: the per-library figures, for a benchmark's printout."""
    return ", ".join(f"{k} {v / 1e9:.0f}" for k, v in flops.items() if k != "best") + " GFLOP/s"
