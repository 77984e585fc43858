"""`c2c-cloud serve ...` and `c2c-cloud approve CODE --project NAME` (CONTRACTS.md §1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cloud.settings import CloudSettings
from harness.config_files import read_json_object
from harness.errors import C2CBenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c2c-cloud", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Frame.io C2C cloud emulator")
    serve.add_argument("--data-dir", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="HTTPS port (0 = any free port)")
    serve.add_argument("--http-port", type=int, default=0, help="plain-HTTP trap port")
    serve.add_argument("--settings", type=Path, help="TOML file of emulator settings")
    serve.add_argument("--ready-file", type=Path, help="JSON written once both ports listen")
    serve.add_argument("--quiet", action="store_true", help="no startup lines")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="another Host name the pages and control API answer to (loopback "
                            "names and --host always do); repeatable")

    approve = sub.add_parser("approve", help="approve a pairing code for a project")
    approve.add_argument("code")
    approve.add_argument("--project", required=True, help="project name (created if missing)")
    approve.add_argument("--data-dir", type=Path, help="emulator data dir (finds ready.json)")
    approve.add_argument("--ready-file", type=Path, help="the emulator's ready file")
    return parser


def find_ready(args: argparse.Namespace) -> dict[str, object]:
    candidates = [args.ready_file] if args.ready_file else []
    if args.data_dir:
        candidates.append(args.data_dir / "ready.json")
    for path in candidates:
        if path and path.exists():
            return read_json_object(path, "c2c-cloud approve: ready file")
    raise SystemExit("c2c-cloud approve: give --ready-file or --data-dir of a running emulator")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from harness.cloud.server import run

            settings = CloudSettings.from_toml(args.settings) if args.settings else CloudSettings()
            ready = args.ready_file or (args.data_dir / "ready.json")
            run(args.data_dir, args.host, args.port, args.http_port, settings, ready, args.quiet,
                tuple(args.allow_host))
            return 0
        from harness.cloud.control import CloudControl

        facts = find_ready(args)
        token_file = facts.get("token_file") or (args.data_dir and args.data_dir / "bench-token")
        if not token_file:
            raise SystemExit("c2c-cloud approve: the ready file names no bench token file; "
                             "give --data-dir")
        with CloudControl(str(facts["api_url"]), Path(str(facts["ca_bundle"])),
                          token_file=Path(str(token_file))) as cloud:
            project = next((p for p in cloud.projects() if p["name"] == args.project), None)
            project = project or cloud.create_project(args.project)
            cloud.approve(args.code, project["id"])
        print(f"approved {args.code} for project {args.project!r} ({project['id']})")
        return 0
    except C2CBenchError as exc:
        print(f"c2c-cloud: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
