"""Every command of the README's quick tour runs as written, against tiny-random-gpt2.

The commands are read from README.md at test time (whatever the block holds then), in order, in a
scratch folder where ``reports/`` starts empty and ``probes/`` is the repository's. The one change
made to a command is the model: ``--model X`` becomes ``--model tiny-random-gpt2``, and commands
that load a model get it added. Long-running servers (``dashboard``, ``serve``) are started on a free
port, checked for a healthy answer, and stopped. A command may exit 1 only where the README says a
failure is a finding (``run``, ``gate`` and ``compare`` exit 1 on a failed gate or a regression);
a usage error (2) or an internal error (3) fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = "tiny-random-gpt2"
LOADS_A_MODEL = {"run", "generate", "serve"}
MAY_FAIL = {"run", "gate", "compare"}  # exit 1 = a failed gate or a regression: a finding, not a bug
SERVERS = {"dashboard": "/_stcore/health", "serve": "/healthz"}


def quick_tour() -> list[str]:
    """The command lines of the first bash block under '## Quick tour'."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Quick tour\s*$(.*?)^```bash\n(.*?)^```", text, re.M | re.S)
    assert m, "README.md has no '## Quick tour' section with a ```bash block"
    lines = []
    for raw in m.group(2).splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith((". ", "source ")):
            continue  # comments, and activating the venv (the test puts its bin on PATH)
        lines.append(line)
    return lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adapt(argv: list[str]) -> list[str]:
    """The README command with the test model (and a free port for servers)."""
    out = list(argv)
    if len(out) > 1 and out[0] == "lm-audit":
        if "--model" in out:
            out[out.index("--model") + 1] = MODEL
        elif out[1] in LOADS_A_MODEL:
            out[2:2] = ["--model", MODEL]
        if out[1] in SERVERS:
            port = str(_free_port())
            if "--port" in out:
                out[out.index("--port") + 1] = port
            else:
                out += ["--port", port]
    return out


def _serve(argv: list[str], env: dict[str, str], cwd: Path, path: str) -> None:
    port = argv[argv.index("--port") + 1]
    log = cwd / f"{argv[1]}.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{shlex.join(argv)} exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{shlex.join(argv)} did not answer {path}: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def test_every_quick_tour_command_runs_as_written(tmp_path: Path) -> None:
    commands = quick_tour()
    assert any(c.startswith("lm-audit run") for c in commands)
    (tmp_path / "probes").symlink_to(ROOT / "probes", target_is_directory=True)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
           "LM_AUDIT_CACHE_DIR": str(tmp_path / "cache")}
    for line in commands:
        argv = adapt(shlex.split(line, comments=True))
        if argv[:1] == ["lm-audit"] and argv[1] in SERVERS:
            _serve(argv, env, tmp_path, SERVERS[argv[1]])
            continue
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        allowed = {0, 1} if argv[:1] == ["lm-audit"] and argv[1] in MAY_FAIL else {0}
        assert done.returncode in allowed, (
            f"README command failed ({done.returncode}): {line}\nran: {shlex.join(argv)}\n"
            f"{done.stderr[-3000:]}\n{done.stdout[-1500:]}"
        )
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
    # what the tour promises exists: the report of the first run, with its gates judged
    run = tmp_path / "reports" / "smol-bias"
    if run.is_dir():
        assert (run / "report.html").is_file() and (run / "summary.json").is_file()


def test_the_first_run_gives_every_axis_an_interval() -> None:
    """The tour's first run (its --limit) keeps at least two whole counterfactual sets per axis,
    so no gap gate of the suite ends as ERROR for want of an interval."""
    from audit.suites import load_suite
    from audit.suites.limit import stratified_limit

    first = next(shlex.split(c) for c in quick_tour() if c.startswith("lm-audit run") and "bias-counterfactual" in c)
    limit = int(first[first.index("--limit") + 1])
    items = load_suite("bias-counterfactual").items
    chosen = stratified_limit(items, limit, 0, ["axis"])
    sets: dict[str, set[str]] = {}
    for it in chosen:
        sets.setdefault(it.attributes["axis"], set()).add(it.seed_key)
    assert len(sets) == 7 and min(len(s) for s in sets.values()) >= 4, {a: len(s) for a, s in sets.items()}


def test_help_texts_read_as_plain_text() -> None:
    from audit.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts += [p.format_help() for p in sub.choices.values()]
    assert len(texts) > 8
    for t in texts:
        assert "``" not in t, t[:400]


def test_the_policies_the_readme_names_exist_and_load() -> None:
    from audit.gates.evaluate import load_policy as load_gates
    from audit.guard.policy import load_policy as load_filter

    assert load_gates(ROOT / "probes/policies/ci.yaml").gates
    assert load_filter(ROOT / "probes/policies/default.yaml") == load_filter(None)  # the built-in default
