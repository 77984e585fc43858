"""`python -m reference_device.sources.tether_cli`: run the tether source alone on a bench.

Prints one JSON line per downloaded file on stdout and status changes on stderr; exits 0
after --max files, 3 on --timeout. Set VCAMERADIR to use libgphoto2's virtual camera.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from reference_device.errors import ConfigError
from reference_device.sources.base import CapturedFile
from reference_device.sources.tether import TetherSource
from reference_device.sources.tether_config import CARD_POLICIES, TetherConfig
from reference_device.sources.tether_files import sha256_file


def main(argv: list[str] | None = None) -> int:
    """Bench/test runner: prints one JSON line per downloaded file, exits after --max files."""
    ap = argparse.ArgumentParser(
        prog="python -m reference_device.sources.tether_cli", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--dest", type=Path, required=True, help="where downloaded frames are written")
    ap.add_argument("--state", type=Path, required=True, help="state dir (download ledger)")
    ap.add_argument(
        "--trigger-every", type=float, default=None, help="remote-trigger a capture every S seconds"
    )
    ap.add_argument("--max", type=int, default=None, help="exit 0 after N files")
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="exit 3 if --max files have not arrived in S seconds",
    )
    ap.add_argument("--card-files", choices=CARD_POLICIES, default="keep")
    ap.add_argument("--camera", default=None)
    ap.add_argument("--port", default=None)
    ap.add_argument("--redetect-interval", type=float, default=2.0)
    args = ap.parse_args(argv)
    try:
        config = TetherConfig(
            dest=args.dest,
            state_dir=args.state,
            camera=args.camera,
            port=args.port,
            card_files=args.card_files,
            trigger_every=args.trigger_every,
            redetect_interval=args.redetect_interval,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = TetherSource(config)
    done = threading.Event()
    count = 0
    out_lock = threading.Lock()

    def on_file(f: CapturedFile) -> None:
        nonlocal count
        if f.reannounced:  # a frame downloaded before a restart: already reported then
            print(json.dumps({"event": "reannounced", "path": str(f.path)}), flush=True)
            return
        with out_lock:
            count += 1
            print(
                json.dumps(
                    {
                        "event": "file",
                        "path": str(f.path),
                        "captured_at": f.captured_at,
                        "sha256": sha256_file(f.path),
                        "n": count,
                    }
                ),
                flush=True,
            )
            if args.max is not None and count >= args.max:
                done.set()

    signal.signal(signal.SIGTERM, lambda *_: done.set())
    source.start(on_file)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    last_state = None
    rc = 0
    try:
        while not done.wait(0.1):
            st = source.status()
            if st["state"] != last_state:
                last_state = st["state"]
                print(json.dumps({"event": "status", **st}), file=sys.stderr, flush=True)
            if deadline is not None and time.monotonic() > deadline:
                rc = 3
                break
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
    print(json.dumps({"event": "status", **source.status(), "exit": rc}), flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
