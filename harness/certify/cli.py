"""`c2c-certify`: run a certification, build the reports, print the step catalog, run mutants.

    c2c-certify run --device reference [--smoke] [--network P] [--seed N] [--reports DIR] [--interactive]
                    [--workers N]
    c2c-certify report --reports reports [--allure PATH]
    c2c-certify verify [REPORTS]
    c2c-certify check-profile PROFILE
    c2c-certify retry --from REPORTS [--only fail,error,not-run]
    c2c-certify steps
    c2c-certify mutants [--full] [--workers N] [--max-workers M] [--shards N] [--resume] [--out reports/mutants.json]
    c2c-certify repeat N --device reference [--workers N] [--reports reports/repeat]
    c2c-certify bench --device reference --workers 4 [--smoke] [--reports DIR] [--bench reports/bench]
    c2c-certify fleet --inventory lab.toml [--reports reports/fleet] [--smoke] [--solo-baseline]

`run` drives pytest on the certification suite in a subprocess (so a crashing device or
plugin never takes the CLI down), shows rich progress from the plugin's progress file,
then a one-screen summary. Its exit status is the certificate's status, never anything
else: 0 CERTIFIED, 1 NOT CERTIFIED (a required item failed or the bench erred on it),
3 INCOMPLETE (nothing failed, but not everything was verified: a partial selection, an
item waiting for a person, a scenario not run), 2 a usage/configuration error.
`run --workers N` shards the scenarios over N pytest-xdist workers, each with its own device
instance, emulator and link (harness.certify.shards), and writes one merged, sealed run.
`repeat N` certifies N times and reports, per item, how often the verdict differed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from harness.certify.progress import follow_progress
from harness.certify.rig_controller import RUN_MARKER_ENV
from harness.children import spawn
from harness.errors import C2CBenchError, ConfigError
from harness.feature_files import FEATURES_ENV, features_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE = REPO_ROOT / "harness" / "bdd" / "suite.py"
SCENARIO_TIMEOUT_S = 900
DEFAULT_ALLURE = REPO_ROOT / ".cache" / "node" / "node_modules" / ".bin" / "allure"


# The pytest plugins a certification loads besides ours, by entry-point name. Nothing else
# installed in the venv (labgrid's, schemathesis', hypothesis', anyio's, faker's plugins) loads
# into one: a verdict cannot depend on what else is installed, and each pytest process (one per
# shard plus the controller) starts in half the CPU (2.7 -> 1.2 CPU-s to collect the suite).
CERTIFY_PLUGINS = ("pytest-bdd", "allure_pytest_bdd", "xdist", "timeout")


def plugin_args() -> list[str]:
    """pytest's plugin arguments for a certification: autoload off, then the c2c_bench plugin (by
    its entry point, or by module in a checkout not installed) and the installed CERTIFY_PLUGINS."""
    installed = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    ours = next((name for name, value in installed.items() if value == "harness.bdd.plugin"), "harness.bdd.plugin")
    names = [ours, *(name for name in CERTIFY_PLUGINS if name in installed)]
    return ["--disable-plugin-autoload", *(arg for name in names for arg in ("-p", name))]


def rootdir_args(features: Path) -> list[str]:
    """pytest's --rootdir when the feature files live outside the checkout.

    allure-pytest-bdd names a scenario by its feature file's path under pytest's rootdir and
    raises for a file outside it (every scenario then ends in a bench error): the rootdir moves
    up to the folder holding both the suite and the features. Scenario node ids then carry the
    longer path; nothing matches on them."""
    if features.is_relative_to(REPO_ROOT):
        return []
    return [f"--rootdir={os.path.commonpath([REPO_ROOT, features])}"]


def checked_features(features: Path) -> Path:
    """The feature folder, or a ConfigError naming it when it holds no feature files."""
    if not features.is_dir():
        raise ConfigError(f"{FEATURES_ENV}={features} is not a folder of .feature files")
    if not any(features.glob("*.feature")):
        raise ConfigError(f"{FEATURES_ENV}={features} holds no .feature files")
    return features


def pytest_command(
    device: str, *, reports: Path, smoke: bool = False, network: str | None = None, seed: int = 1,
    interactive: bool = False, items: Sequence[str] = (), extra: Sequence[str] = (), strict: bool = False,
    workers: int = 1,
) -> list[str]:
    """The pytest argv for one certification run (sharded over `workers` xdist workers when > 1)."""
    from harness.certify.shards import xdist_args

    argv = [sys.executable, "-m", "pytest", str(SUITE), *plugin_args(), "-q", "-rN", "--no-header",
            "-p", "no:cacheprovider", f"--c2c-device={device}", f"--c2c-seed={seed}", f"--c2c-reports={reports}",
            f"--alluredir={reports / 'allure-results'}", *rootdir_args(checked_features(features_dir()))]
    if importlib.util.find_spec("pytest_timeout") is not None:
        argv.append(f"--timeout={SCENARIO_TIMEOUT_S}")  # scenario budgets are in the steps; this is a backstop
    if network:
        argv.append(f"--c2c-network={network}")
    if interactive:
        argv += ["--c2c-interactive", "-s"]
    selection = [f"({i})" for i in ([*items, "smoke"] if smoke and items else ["smoke"] if smoke else items)]
    if selection:
        argv += ["-m", " or ".join(selection)]
    if smoke:
        argv.append("--c2c-smoke")
    if strict:
        argv.append("--c2c-strict")
    return [*argv, *xdist_args(workers), *extra]


def summary_text(cert: dict[str, Any], reports: Path) -> str:
    """The one-screen summary printed after a run (its first line is the certificate's)."""
    s = cert["summary"]
    dev = cert["device"]
    lines = [f"C2C certification of {dev.get('id', dev.get('name'))} (firmware {dev.get('firmware')}, kind {dev.get('kind')})",
             "  " + ", ".join(f"{k}: {v}" for k, v in sorted(s["counts"].items()))]
    inferred_label = "FAIL (inferred only; strict: blocking)" if s.get("strict") else "FAIL (inferred only; not blocking)"
    for label, key in (("FAIL", "failing"), (inferred_label, "inferred_failing"),
                       ("FAIL (optional item)", "optional_failing"), ("ERROR (bench)", "errors"),
                       ("OPERATOR (needs a person)", "operator"), ("NOT RUN", "not_run")):
        ids = s.get(key) or []
        if ids and key == "not_run" and s.get("partial"):
            lines.append(f"  NOT RUN: {len(ids)} item(s) outside this selection")
        elif ids:
            lines.append(f"  {label}: {' '.join(ids)}")
            for item_id in ids[:8]:
                reason = cert["items"][item_id].get("reason", "")
                if reason:
                    lines.append(f"    {item_id}: {reason[:150]}")
    declared = [i for i, e in cert["items"].items() if e["verdict"] == "declared"]
    if declared:
        lines.append(f"  DECLARED (the profile's word, not measured): {' '.join(declared)}")
    for c in s.get("contradicted") or []:
        lines.append(f"  DECLARATION CONTRADICTED {c['declaration']}: {c['evidence']}")
    for item_id, reason in (s.get("declared_not_applicable") or {}).items():
        lines.append(f"  declared n/a {item_id}: {reason[:120]}")
    lines.append(f"  => {cert.get('headline', s.get('status'))}")
    lines.append(f"  certificate: {reports / 'certificate.json'}  {reports / 'certificate.html'}")
    lines.append(f"  allure results: {reports / 'allure-results'} (HTML: c2c-certify report)")
    return "\n".join(lines)


def checked_profile(name: str) -> list[str]:
    """Parse and review a profile; raise ConfigError listing every refusal, return the notes."""
    from harness.device.profile import load_profile
    from harness.device.profile_check import review

    findings = review(load_profile(name))
    refusals = [str(f) for f in findings if f.refuses]
    if refusals:
        raise ConfigError(f"profile {name}: " + "; ".join(refusals))
    return [str(f) for f in findings if not f.refuses]


def cmd_check_profile(args: argparse.Namespace) -> int:
    for note in checked_profile(args.profile):
        print(f"  note: {note}")
    print(f"profile {args.profile}: fit to certify")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    checked_profile(args.device)  # refuse a bad or inconsistent profile before starting anything
    from harness.certify.shards import check_shardable
    from harness.device.profile import load_profile

    check_shardable(args.workers, launchable=load_profile(args.device).launch is not None,
                    interactive=args.interactive)
    reports = Path(args.reports).resolve()
    # built first: it refuses a feature folder with nothing to certify before any report is removed
    argv = pytest_command(args.device, reports=reports, smoke=args.smoke, network=args.network, seed=args.seed,
                          interactive=args.interactive, items=args.item or (), extra=args.pytest_args or (),
                          strict=args.strict, workers=args.workers)
    reports.mkdir(parents=True, exist_ok=True)
    for stale in ("progress.jsonl", "results.json", "certificate.json", "certificate.html"):
        (reports / stale).unlink(missing_ok=True)
    for stale_dir in ("allure-results", "operator-evidence"):  # the manifest lists only this run's files
        shutil.rmtree(reports / stale_dir, ignore_errors=True)
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    if args.operator:
        env["C2C_OPERATOR"] = args.operator  # who answers the operator questions, in the certificate
    log = (reports / "pytest.log").open("wb")
    with log:
        proc = spawn(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                     stdin=None if args.interactive else subprocess.DEVNULL)
        try:
            follow_progress(reports, proc, quiet=args.quiet or args.interactive)
            proc.wait()
        except KeyboardInterrupt:
            # pytest took the same Ctrl-C (one process group) and is tearing the bench down in
            # order: wait for it, since it ends with this process (spawn). A second Ctrl-C stops now.
            print("c2c-certify: interrupted; the bench is tearing down (Ctrl-C again to stop now)",
                  file=sys.stderr, flush=True)
            proc.wait()
            raise
    cert_path = reports / "certificate.json"
    if not cert_path.exists():
        print(f"c2c-certify: no certificate produced; see {reports / 'pytest.log'}", file=sys.stderr)
        print((reports / "pytest.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        return 1
    cert = json.loads(cert_path.read_text(encoding="utf-8"))
    from harness.certify.manifest import MANIFEST, write_manifest

    write_manifest(reports)
    print(summary_text(cert, reports))
    print(f"  sealed: {reports / MANIFEST} (c2c-certify verify {reports})")
    return int(cert["summary"]["exit_code"])


def cmd_report(args: argparse.Namespace) -> int:
    from harness.certify.manifest import verify_folder
    from harness.certify.report import build_allure_report

    reports = Path(args.reports).resolve()
    if (reports / "results.json").exists():
        verify_folder(reports)  # the certificate in a verified folder is the run's own: nothing to rebuild
        print(f"certificate: {reports / 'certificate.json'} (folder verifies)")
    # absolute: the Allure CLI runs with the reports directory as its working directory
    out = build_allure_report(reports, Path(args.allure).absolute() if args.allure else DEFAULT_ALLURE)
    print(f"report: {out}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from harness.certify.manifest import bench_version
    from harness.certify.retry import RETRYABLE, retry_plan

    earlier = Path(args.from_reports).resolve()
    only = tuple(v.strip() for v in args.only.split(",") if v.strip()) if args.only else RETRYABLE
    unknown = sorted(set(only) - set(RETRYABLE))
    if unknown:
        raise ConfigError(f"retry --only: {unknown} are not retryable verdicts; choose from {', '.join(RETRYABLE)}")
    plan = retry_plan(earlier, only, str(bench_version().get("commit")))
    if not plan["items"]:
        print(f"retry: nothing to retry in {earlier} (no item is {', '.join(only)})")
        return 0
    n = 1
    while (earlier.parent / f"{earlier.name}-retry{n}").exists():
        n += 1
    out = Path(args.reports).resolve() if args.reports else earlier.parent / f"{earlier.name}-retry{n}"
    print(f"retry: {len(plan['items'])} item(s) of {earlier}: {' '.join(plan['items'])} -> {out}")
    argv = ["run", "--device", plan["device"], "--seed", str(plan["seed"]), "--reports", str(out), "--quiet"]
    if plan["network"]:
        argv += ["--network", str(plan["network"])]
    if plan["strict"]:  # the same policy for inferred failures as the run it retries
        argv.append("--strict")
    for item in plan["items"]:
        argv += ["--item", item]
    return main([*argv, "--", f"--c2c-prior={plan['prior']}"])


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.certify.manifest import verify_folder
    from harness.certify.seal import SealBroken

    reports = Path(args.reports).resolve()
    try:
        manifest = verify_folder(reports)
    except SealBroken as exc:
        print(f"c2c-certify verify: FAILED: {exc}", file=sys.stderr)
        return 1
    bench = manifest.get("bench", {})
    print(f"{reports}: {len(manifest['files'])} files verify; firmware {manifest['device']['firmware']}, "
          f"bench {bench.get('commit', '?')[:12]}{' (dirty)' if bench.get('dirty') else ''}, key {manifest['key_id']}")
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    from harness.certify.catalog import render_catalog

    print(render_catalog())
    return 0


CHAOS_MODULE = "harness.chaos"


def run_chaos(chaos_args: Sequence[str]) -> int:
    """The fault campaign in a child process: harness.chaos sits above certification (it reads
    the certification's ledger), so certify runs it by name, as `run` runs the pytest plugin.
    Its arguments pass through untouched (argparse would claim --device, --seed, --help)."""
    done = subprocess.run([sys.executable, "-m", CHAOS_MODULE, *chaos_args], check=False)
    return done.returncode


def cmd_mutants(args: argparse.Namespace) -> int:
    # the seeded defects live beside the test suite, not in the installed package: find the
    # checkout this harness runs from (a console script does not put it on sys.path)
    repo = Path(__file__).resolve().parents[2]
    if not (repo / "tests" / "mutants" / "matrix.py").is_file():
        raise ConfigError(f"the seeded-defect matrix runs from a source checkout; no tests/mutants under {repo}")
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tests.mutants.matrix import run_matrix

    started = time.monotonic()
    try:
        results = run_matrix(full=args.full, out=Path(args.out), only=args.only or None, workers=args.workers,
                             most=args.max_workers, shards=args.shards, resume=args.resume)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    bad = [r for r in results if not r["ok"]]
    for r in results:
        mark = "ok " if r["ok"] else "BAD"
        print(f"{mark} {r['mutant']:<28} {r['item']:<12} {r.get('seconds', 0):>6.1f}s "
              f"failed={','.join(r['failed']) or '-'} {r.get('note', '')}")
    print(f"{len(results) - len(bad)}/{len(results)} mutants flagged on their item only "
          f"in {time.monotonic() - started:.0f} s; table: {args.out}")
    return 1 if bad else 0


def cmd_repeat(args: argparse.Namespace) -> int:
    from harness.certify.repeat import bench_record, repeat

    if args.runs < 1:
        raise ConfigError(f"repeat: runs must be at least 1, got {args.runs}")
    reports = Path(args.reports).resolve()

    def certify(out: Path) -> int:
        argv = ["run", "--device", args.device, "--seed", str(args.seed), "--reports", str(out), "--quiet"]
        if args.workers > 1:
            argv += ["--workers", str(args.workers)]
        for item in args.item or ():
            argv += ["--item", item]
        return main(argv)

    summary = repeat(args.runs, certify, reports)
    bench = Path(args.bench).resolve()
    bench.mkdir(parents=True, exist_ok=True)
    record = bench_record(summary, device=args.device, workers=args.workers)
    (bench / "certify.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    for item_id in summary["items_that_differed"]:
        print(f"  DIFFERED {item_id}: {' '.join(summary['items'][item_id]['verdicts'])}")
    print(f"{args.runs} certifications of {args.device}: {summary['verdict_diffs']} verdict difference(s) "
          f"in {len(summary['items_that_differed'])} item(s); mean {sum(summary['seconds']) / args.runs:.0f} s a run; "
          f"{reports / 'repeat.json'}")
    return 0 if summary["verdict_diffs"] == 0 else 1


def _certify_timed(argv: list[str], out: Path) -> tuple[float, dict[str, Any]]:
    """One `run` (argv without --reports); its wall time and certificate ({} when none)."""
    started = time.monotonic()
    main([*argv, "--reports", str(out), "--quiet"])
    seconds = time.monotonic() - started
    cert_path = out / "certificate.json"
    return seconds, json.loads(cert_path.read_text(encoding="utf-8")) if cert_path.exists() else {}


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.certify.repeat import shard_bench_record

    reports = Path(args.reports).resolve()
    base = ["run", "--device", args.device, "--seed", str(args.seed), *(["--smoke"] if args.smoke else [])]
    for item in args.item or ():
        base += ["--item", item]
    runs: list[tuple[int, float, dict[str, Any]]] = []
    for workers in [1, *sorted(set(args.workers) - {1})]:
        seconds, cert = _certify_timed([*base, "--workers", str(workers)], reports / f"workers-{workers}")
        runs.append((workers, seconds, cert))
        print(f"  workers={workers}: {seconds:.0f} s, {cert.get('headline', 'no certificate')}")
    selection = "smoke" if args.smoke else ",".join(args.item) if args.item else "full"
    record = shard_bench_record(runs, device=args.device, selection=selection)
    bench = Path(args.bench).resolve()
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "certify.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    diffs = [r for r in record["results"] if r["name"] == "verdict_diffs"]
    for row in record["results"]:
        if row["name"] != "certify_s":
            print(f"  {row['name']} (workers={row['params']['workers']}): {row['value']}")
    print(f"bench: {bench / 'certify.json'}")
    return 0 if all(r["value"] == 0 for r in diffs) else 1


def cmd_fleet(args: argparse.Namespace) -> int:
    from harness.certify.fleet import fleet_command

    return fleet_command(Path(args.inventory), Path(args.reports).resolve(), smoke=args.smoke, items=args.item or (),
                         seed=args.seed, bench=Path(args.bench).resolve() if args.solo_baseline else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c2c-certify", description="Frame.io C2C certification bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="certify a device")
    run.add_argument("--device", default="reference", help="profile name, path, or mutant:NAME")
    run.add_argument("--smoke", action="store_true", help="only the @smoke scenarios (<= 60 s)")
    run.add_argument("--network", default=None, help="network profile for the whole run")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--reports", default="reports")
    run.add_argument("--interactive", action="store_true", help="prompt the operator for operator items")
    run.add_argument("--operator", default=None, help="name of the person answering (default: $C2C_OPERATOR or the user)")
    run.add_argument("--item", action="append", help="only scenarios tagged with this checklist ID")
    run.add_argument("--strict", action="store_true",
                     help="a failure resting only on inferred (@evidence-inferred) expectations blocks CERTIFIED")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--workers", type=int, default=1,
                     help="shard the scenarios over N device instances at once (pytest-xdist); one merged certificate")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments after --")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="certificate + Allure 3 HTML report from a run's results")
    rep.add_argument("--reports", default="reports")
    rep.add_argument("--allure", default=None, help="path of the Allure 3 CLI")
    rep.set_defaults(func=cmd_report)
    rty = sub.add_parser("retry", help="rerun the failed, errored and unrun items of an earlier run")
    rty.add_argument("--from", dest="from_reports", required=True, help="the earlier run's reports folder")
    rty.add_argument("--only", default=None, help="comma-separated verdicts to retry (default: fail,error,not-run,operator)")
    rty.add_argument("--reports", default=None, help="where the retry writes (default: <from>-retryN)")
    rty.set_defaults(func=cmd_retry)
    chk = sub.add_parser("check-profile", help="static review of a device profile (run does it first)")
    chk.add_argument("profile", help="profile name, path, or mutant:NAME")
    chk.set_defaults(func=cmd_check_profile)
    ver = sub.add_parser("verify", help="check a reports folder against its signed manifest")
    ver.add_argument("reports", nargs="?", default="reports")
    ver.set_defaults(func=cmd_verify)
    steps = sub.add_parser("steps", help="print the step catalog for feature authors")
    steps.set_defaults(func=cmd_steps)
    cha = sub.add_parser("chaos", add_help=False,
                         help="Jepsen-style fault campaign: --device P --schedules N --seed S [--replay FILE] "
                              "(python -m harness.chaos --help)")
    cha.set_defaults(func=lambda args: run_chaos([]))  # main() hands its arguments over first
    mut = sub.add_parser("mutants", help="certify every seeded-defect variant of the reference device")
    mut.add_argument("--full", action="store_true", help="full run per mutant instead of its item + smoke")
    mut.add_argument("--out", default="reports/mutants.json")
    mut.add_argument("--only", action="append", help="only this mutant (repeatable)")
    mut.add_argument("--workers", type=int, default=2, help="mutants certified at the same time")
    mut.add_argument("--max-workers", type=int, default=None,
                     help="up to this many at once while the machine has CPU to spare (default: --workers)")
    mut.add_argument("--shards", type=int, default=1, help="each mutant's run sharded over N devices (run --workers)")
    mut.add_argument("--resume", action="store_true",
                     help="keep the ok rows of the table at --out when it judged this same commit")
    mut.set_defaults(func=cmd_mutants)
    rep_n = sub.add_parser("repeat", help="certify N times; per item, how often the verdict differed")
    rep_n.add_argument("runs", type=int, help="how many certifications")
    rep_n.add_argument("--device", default="reference", help="profile name, path, or mutant:NAME")
    rep_n.add_argument("--seed", type=int, default=1)
    rep_n.add_argument("--item", action="append", help="only scenarios tagged with this checklist ID")
    rep_n.add_argument("--workers", type=int, default=1, help="each run sharded over N devices (run --workers)")
    rep_n.add_argument("--reports", default="reports/repeat")
    rep_n.add_argument("--bench", default="reports/bench", help="where certify.json (certify_s, verdict_diffs) goes")
    rep_n.set_defaults(func=cmd_repeat)
    ben = sub.add_parser("bench", help="certify serially and sharded; certify_s and verdict_diffs per worker count")
    ben.add_argument("--device", default="reference", help="profile name, path, or mutant:NAME")
    ben.add_argument("--workers", type=int, action="append", required=True, help="sharded worker count (repeatable)")
    ben.add_argument("--smoke", action="store_true", help="only the @smoke scenarios")
    ben.add_argument("--item", action="append", help="only scenarios tagged with this checklist ID")
    ben.add_argument("--seed", type=int, default=1)
    ben.add_argument("--reports", default="reports/bench-runs")
    ben.add_argument("--bench", default="reports/bench", help="where certify.json goes")
    ben.set_defaults(func=cmd_bench)
    flt = sub.add_parser("fleet", help="certify every device of an inventory (TOML: rigs x devices) at once")
    flt.add_argument("--inventory", required=True, help="inventory TOML (see harness/certify/fleet.py)")
    flt.add_argument("--reports", default="reports/fleet")
    flt.add_argument("--smoke", action="store_true", help="only the @smoke scenarios")
    flt.add_argument("--item", action="append", help="only scenarios tagged with this checklist ID")
    flt.add_argument("--seed", type=int, default=1)
    flt.add_argument("--solo-baseline", action="store_true",
                     help="certify every device alone first (fleet_ratio: the fleet over the first one's time; verdict diffs per device) into --bench/fleet.json")
    flt.add_argument("--bench", default="reports/bench", help="where fleet.json (fleet_ratio) goes")
    flt.set_defaults(func=cmd_fleet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(RUN_MARKER_ENV):
        # A fleet's run: the fleet stops it with SIGINT to its session, and pytest tears the bench
        # down on it. A fleet started with SIGINT ignored (a script's `c2c-certify fleet &`) hands
        # that on to its runs, which must take the signal all the same.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if given[:1] == ["chaos"]:
        return run_chaos(given[1:])
    args = build_parser().parse_args(given)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"c2c-certify: {exc}", file=sys.stderr)
        return 2
    except C2CBenchError as exc:
        print(f"c2c-certify: bench error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
