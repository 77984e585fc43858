"""Then-steps that probe the media the cloud stored: timecode, proxies, codecs (C2C-WF-*).

Probes decode the bytes the cloud holds (downloaded through the emulator's asset-content
call, then harness.faults.media.validate and PyAV), never the bench's own source files and
never the device's claims. The bench's source is only the reference a probe is compared
with, and it must carry what the item checks (a timecode) or the scenario is a bench error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_bdd import parsers, then

from harness.bdd.bench import Bench
from harness.bdd.steps.common import wait_until
from harness.errors import BenchFailure


def _probe(bench: Bench, capture: Any) -> dict[str, Any]:
    """Probe the media the cloud stored: byte-identical to the capture when the ledger says intact.

    Returns {codecs, timecode, time_reference, bit_rate} from a full decode
    (harness.faults.media.validate) plus the container bit rate (PyAV).
    """
    from harness.errors import MediaError
    from harness.faults.media.validate import validate as validate_media

    result = validate_media(capture.path)
    if not result.ok:
        raise MediaError(f"{capture.name}: cannot probe: {result.error}")
    details = dict(result.details)
    codecs = [s.split(":", 1)[1] for s in details.get("streams", [])]
    if details.get("bits"):
        codecs.append(f"pcm_s{details['bits']}le")
    info: dict[str, Any] = {"codecs": codecs, "timecode": details.get("timecode"),
                            "time_reference": details.get("time_reference")}
    try:
        import av

        with av.open(str(capture.path)) as container:
            info["bit_rate"] = container.bit_rate or 0
    except Exception:
        info["bit_rate"] = 0
    return info


def _timecode_of(info: dict[str, Any]) -> Any:
    """The timecode a probe found: SMPTE timecode (video) or BWF time_reference (audio)."""
    return info.get("timecode") or info.get("time_reference")


def _cloud_copies(bench: Bench) -> list[tuple[Any, Any]]:
    """(capture, probe-able copy of the bytes the cloud stored for it) for every capture."""
    ledger = bench.ledger(drained=True)
    by_name = {f.name: f for f in ledger.files}
    rows = {str(r.get("asset_id")): r for r in bench.cloud.ledger(bench.cloud_device_id())}
    out = []
    for cap in bench.state.captures:
        verdict = by_name.get(cap.name)
        assert verdict is not None and verdict.outcome == "intact", f"{cap.name}: not delivered intact"
        row = next((rows[a] for a in verdict.assets if a in rows and rows[a].get("completed_at")), None)
        assert row is not None, f"{cap.name}: no complete asset in the cloud"
        path = _asset_bytes(bench, row, bench.scratch("cloud-copy"))
        out.append((cap, type("CloudCopy", (), {"path": path, "name": row["name"]})()))
    return out


@then("the uploaded files keep the timecode they were recorded with")
def _timecode(bench: Bench) -> None:
    """The timecode probed in the cloud's copy of each file equals the one it was recorded
    with (probed in the bench's source); a source without a timecode is a bench error."""
    wrong: list[str] = []
    for cap, copy in _cloud_copies(bench):
        recorded = _timecode_of(_probe(bench, cap))
        if recorded is None:
            raise BenchFailure(f"{cap.name}: the bench recorded it without a timecode, nothing to compare")
        uploaded = _timecode_of(_probe(bench, copy))
        bench.exercised(f"{cap.name}: timecode {recorded!r} recorded, {uploaded!r} in the cloud's copy")
        if uploaded != recorded:
            wrong.append(f"{cap.name}: cloud copy {uploaded!r}, recorded {recorded!r}")
    ok = bench.measure("C2C-WF-02", "timecode_mismatches", len(wrong), probed=len(bench.state.captures))
    assert ok, f"timecode not kept: {wrong}"


@then(parsers.parse("the device uploads a proxy of it within {seconds:d} seconds"))
def _proxy_uploaded(bench: Bench, seconds: int) -> None:
    """A second asset named after the hero file (its proxy) completes in the cloud."""
    hero = bench.state.captures[-1]
    stem = hero.name.rsplit(".", 1)[0]

    def proxy() -> dict[str, Any] | None:
        rows = [r for r in bench.cloud.ledger(bench.cloud_device_id())
                if str(r.get("name", "")).startswith(stem) and r.get("name") != hero.name and r.get("completed_at")]
        return rows[0] if rows else None
    bench.state.proxy_row = wait_until(proxy, seconds, f"a proxy of {hero.name} in the cloud")


@runtime_checkable
class AssetContent(Protocol):
    """A cloud that hands back the bytes it stored for an asset (the emulator's control API)."""

    def asset_content(self, asset_id: str, dest: Path) -> Path: ...


def _asset_bytes(bench: Bench, row: dict[str, Any], scratch: Any) -> Any:
    """Download an asset the device made (needs the emulator's asset-content control call)."""
    from harness.errors import CloudError

    cloud = bench.cloud
    if not isinstance(cloud, AssetContent):
        raise CloudError("the emulator offers no asset download; the bytes the cloud stored cannot be probed")
    fetch = cloud.asset_content
    # the device chose the name: never let it pick a path (``../x``), keep only a tame extension
    suffix = "".join(c for c in Path(str(row["name"])).suffix if c.isalnum() or c == ".")[:10]
    return fetch(str(row["asset_id"]), scratch / f"{row['asset_id']}{suffix}")


def _proxy_row(bench: Bench) -> dict[str, Any]:
    """The proxy the earlier step found; none is a scenario written out of order (a bench error)."""
    row = bench.state.proxy_row
    if row is None:
        raise BenchFailure("no proxy of the hero file was found earlier in this scenario")
    return row


@then("the uploaded proxy matches its hero file in filename, timecode and metadata")
def _proxy_match(bench: Bench) -> None:
    """Proxy and hero share base name and timecode."""
    hero = bench.state.captures[-1]
    row = _proxy_row(bench)
    proxy_path = _asset_bytes(bench, row, bench.scratch("proxy"))
    assert str(row["name"]).startswith(hero.name.rsplit(".", 1)[0]), "proxy name does not match the hero"
    proxy = type("P", (), {"path": proxy_path, "name": row["name"]})()
    recorded = _timecode_of(_probe(bench, hero))
    if recorded is None:
        raise BenchFailure(f"{hero.name}: the bench's hero file has no timecode, nothing to match")
    shown = _timecode_of(_probe(bench, proxy))
    assert shown == recorded, f"proxy timecode {shown!r} != hero timecode {recorded!r}"


@then("the uploaded proxy bitrate is between 1 and 12 Mbps")
def _proxy_bitrate(bench: Bench) -> None:
    """LTE-optimised proxy: measured bitrate within 1..12 Mbit/s."""
    row = _proxy_row(bench)
    proxy = type("P", (), {"path": _asset_bytes(bench, row, bench.scratch("proxy")), "name": row["name"]})()
    mbps = float(_probe(bench, proxy).get("bit_rate", 0)) / 1e6
    assert bench.measure("C2C-WF-05", "proxy_Mbps", round(mbps, 2)), f"proxy bitrate {mbps:.1f} Mbit/s"


VIDEO_CODECS = frozenset({"h264", "hevc", "prores"})
AUDIO_CODECS = frozenset({"aac", "pcm_s16le", "pcm_s24le", "pcm_s32le"})


@then("the uploaded media uses standard video and audio codecs")
def _codecs(bench: Bench) -> None:
    """Codecs probed in the cloud's copies are standard (H.264/HEVC/ProRes, AAC/PCM), and
    the scenario's uploads include a video and an audio stream to judge."""
    found: set[str] = set()
    bad: list[str] = []
    for cap, copy in _cloud_copies(bench):
        codecs = set(_probe(bench, copy).get("codecs", []))
        found |= codecs
        if not codecs or not codecs <= VIDEO_CODECS | AUDIO_CODECS:
            bad.append(f"{cap.name}: {sorted(codecs)}")
    if not bad and not (found & VIDEO_CODECS and found & AUDIO_CODECS):
        raise BenchFailure(f"the uploads probed hold no video and audio stream to judge: {sorted(found)}")
    bench.exercised(f"codecs probed in the cloud's copies: {sorted(found)}")
    ok = bench.measure("C2C-WF-06", "nonstandard_codecs", len(bad), probed=len(bench.state.captures))
    assert ok, f"non-standard codecs in the uploads: {bad}"
