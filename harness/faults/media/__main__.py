"""Make a fixture set by hand: `python -m harness.faults.media --out fixtures/generated`.

Writes the files and `media-manifest.json` into --out (never commit the output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import MediaError
from harness.faults.media.generate import KINDS
from harness.faults.media.manifest import MediaKit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m harness.faults.media", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", type=Path, default=Path("fixtures/generated"))
    ap.add_argument("--kinds", default="all", help=f"comma list of {', '.join(KINDS)} or 'all'")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--hostile-names", action="store_true", help="unicode, spaces and quotes in names"
    )
    ap.add_argument(
        "--large", type=int, default=0, metavar="BYTES", help="also one .bin data file of BYTES"
    )
    args = ap.parse_args(argv)
    try:
        kit = MediaKit(
            args.seed,
            manifest_path=args.out / "media-manifest.json",
            stash_dir=args.out / ".stash",
            hostile_names=args.hostile_names,
        )
        entries = kit.generate(
            [k for k in args.kinds.split(",") if k.strip()], args.out, count=args.count
        )
        if args.large:
            entries.append(kit.large(args.out, args.large))
    except MediaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in entries:
        print(f"{e['format']:<12} {e['size']:>10}  {e['sha256'][:16]}  {e['name']}")
    print(f"manifest: {args.out / 'media-manifest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
