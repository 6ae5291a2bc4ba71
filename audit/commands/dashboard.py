"""``lm-audit dashboard``: serve the Streamlit dashboard over the run folders of a reports folder.

Runs ``streamlit run dashboard/app.py`` headless, with usage statistics off and on the loopback
interface unless ``--host`` says otherwise. The app reads only the run folders listed under
``--reports`` (passed to it in the ``LM_AUDIT_REPORTS`` environment variable).
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import sys
from pathlib import Path

REPORTS_ENV = "LM_AUDIT_REPORTS"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve the Streamlit dashboard for a reports folder", description=__doc__)
    p.add_argument(
        "--reports", type=Path, default=Path("reports"), help="folder holding run folders (default: reports)"
    )
    p.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; anything else exposes the dashboard to the network)",
    )
    p.set_defaults(func=run)


def app_path() -> Path:
    """Where ``dashboard/app.py`` lives, found without importing streamlit."""
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        from audit.core.errors import UsageError

        raise UsageError("the 'dashboard' package is not installed (reinstall lm-audit)")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def streamlit_command(reports: Path, port: int, host: str) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` command line and the environment for it (validated)."""
    from audit.core.errors import UsageError

    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, not {port}")
    if not reports.is_dir():
        raise UsageError(
            f"reports folder not found: {reports} (run 'lm-audit run ...' or 'make audit' first, or pass --reports)"
        )
    if importlib.util.find_spec("streamlit") is None:
        raise UsageError("streamlit is not installed: pip install streamlit")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        "--",
        "--reports",
        str(reports.resolve()),
    ]
    env = {**os.environ, REPORTS_ENV: str(reports.resolve()), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    return cmd, env


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    cmd, env = streamlit_command(args.reports, args.port, args.host)
    if not _is_loopback(args.host):
        print(
            f"warning: serving on {args.host}: anyone who can reach this address can read the reports "
            "and run the playground model",
            file=sys.stderr,
        )
    print(f"dashboard: http://{args.host}:{args.port}  (reports: {args.reports.resolve()}; Ctrl+C stops)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)  # replace this process, so stopping it stops the server
    return 0  # pragma: no cover - execve does not return
