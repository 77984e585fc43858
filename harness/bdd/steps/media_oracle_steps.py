"""Then-steps that probe the media the cloud stored: timecode, proxies, codecs (C2C-WF-*).

Probes decode the bytes (harness.faults.media.validate, PyAV), never the device's claims.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_bdd import parsers, then

from harness.bdd.steps.common import wait_until


def _probe(bench: Any, capture: Any) -> dict[str, Any]:
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


@then("the uploaded files keep the timecode they were recorded with")
def _timecode(bench: Any) -> None:
    """Delivered intact means the timecode in the file is the recorded one; checked by probe."""
    ledger = bench.ledger(drained=True)
    assert all(f.outcome == "intact" for f in ledger.files), "files not delivered intact"
    for cap in bench.state.captures:
        info = _probe(bench, cap)
        assert info.get("timecode") or info.get("time_reference") is not None, f"{cap.name}: no timecode"


@then(parsers.parse("the device uploads a proxy of it within {seconds:d} seconds"))
def _proxy_uploaded(bench: Any, seconds: int) -> None:
    """A second asset named after the hero file (its proxy) completes in the cloud."""
    hero = bench.state.captures[-1]
    stem = hero.name.rsplit(".", 1)[0]

    def proxy() -> dict[str, Any] | None:
        rows = [r for r in bench.cloud.ledger(bench.cloud_device_id())
                if str(r.get("name", "")).startswith(stem) and r.get("name") != hero.name and r.get("completed_at")]
        return rows[0] if rows else None
    bench.state.notes["proxy_row"] = wait_until(proxy, seconds, f"a proxy of {hero.name} in the cloud")


def _asset_bytes(bench: Any, row: dict[str, Any], scratch: Any) -> Any:
    """Download an asset the device made (needs the emulator's asset-content control call)."""
    from harness.errors import CloudError

    fetch = getattr(bench.cloud, "asset_content", None)
    if not callable(fetch):
        raise CloudError("the emulator offers no asset download; proxies made by the device cannot be probed")
    # the device chose the name: never let it pick a path (``../x``), keep only a tame extension
    suffix = "".join(c for c in Path(str(row["name"])).suffix if c.isalnum() or c == ".")[:10]
    return fetch(str(row["asset_id"]), scratch / f"{row['asset_id']}{suffix}")


@then("the uploaded proxy matches its hero file in filename, timecode and metadata")
def _proxy_match(bench: Any) -> None:
    """Proxy and hero share base name and timecode."""
    hero = bench.state.captures[-1]
    row = bench.state.notes["proxy_row"]
    proxy_path = _asset_bytes(bench, row, bench.scratch("proxy"))
    assert str(row["name"]).startswith(hero.name.rsplit(".", 1)[0]), "proxy name does not match the hero"
    proxy = type("P", (), {"path": proxy_path, "name": row["name"]})()
    assert _probe(bench, hero).get("timecode") == _probe(bench, proxy).get("timecode"), "timecodes differ"


@then("the uploaded proxy bitrate is between 1 and 12 Mbps")
def _proxy_bitrate(bench: Any) -> None:
    """LTE-optimised proxy: measured bitrate within 1..12 Mbit/s."""
    row = bench.state.notes["proxy_row"]
    proxy = type("P", (), {"path": _asset_bytes(bench, row, bench.scratch("proxy")), "name": row["name"]})()
    mbps = float(_probe(bench, proxy).get("bit_rate", 0)) / 1e6
    assert bench.measure("C2C-WF-05", "proxy_Mbps", round(mbps, 2)), f"proxy bitrate {mbps:.1f} Mbit/s"


@then("the uploaded media uses standard video and audio codecs")
def _codecs(bench: Any) -> None:
    """Codecs in the delivered files are standard (H.264/HEVC/ProRes, AAC/PCM)."""
    standard = {"h264", "hevc", "prores", "aac", "pcm_s16le", "pcm_s24le", "pcm_s32le"}
    for cap in bench.state.captures:
        codecs = set(_probe(bench, cap).get("codecs", []))
        assert codecs and codecs <= standard, f"{cap.name}: codecs {sorted(codecs)}"
