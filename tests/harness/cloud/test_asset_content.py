"""Asset content for media probes: GET /_bench/v1/assets/{id}/content and
CloudControl.asset_content, over real HTTPS with real media files."""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.testing import PairedDevice
from harness.errors import CloudError

from .conftest import create_asset, put_parts

SMALL_PARTS = {"min_part_size": 0, "default_part_size": 4096}


def upload(api: httpx.Client, device: PairedDevice, data: bytes, parts: int | None = None,
           name: str = "clip.mp4", upto: int | None = None) -> dict:
    body: dict = {"name": name, "filetype": "video/mp4", "filesize": len(data)}
    if parts is not None:
        body["parts"] = parts
    answer = create_asset(api, device, **body)
    assert answer.status_code == 200, answer.text
    asset = answer.json()
    urls = asset["upload_urls"]
    chunk = -(-len(data) // len(urls)) if data else 0
    for i, url in enumerate(urls[:upto]):
        put = api.put(url, content=data[i * chunk:(i + 1) * chunk],
                      headers={"content-type": "video/mp4", "x-amz-acl": "private"})
        assert put.status_code == 200, put.text
    return asset


def make_movie(path: Path, frames: int = 12) -> None:
    """A real H.264 MP4 with a start timecode, like a camera proxy."""
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        out.metadata["timecode"] = "01:02:03:04"
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 24)
        for i in range(frames):
            image = np.full((48, 64, 3), (i * 20) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_multipart_asset_content_is_the_uploaded_bytes(
        api: httpx.Client, cloud: CloudControl, paired_device: PairedDevice,
        tmp_path: Path) -> None:
    cloud.update_settings(**SMALL_PARTS)
    data = os.urandom(10_000)
    asset = upload(api, paired_device, data, parts=3)
    assert len(asset["upload_urls"]) == 3
    dest = tmp_path / "clip.mp4"
    assert cloud.asset_content(asset["id"], dest) == dest
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left


def test_range_requests_and_sha_header(api: httpx.Client, cloud: CloudControl,
                                       paired_device: PairedDevice) -> None:
    data = os.urandom(5000)
    asset = upload(api, paired_device, data)
    url = f"/_bench/v1/assets/{asset['id']}/content"
    whole = api.get(url, auth=cloud.auth)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["x-asset-sha256"] == hashlib.sha256(data).hexdigest()
    assert whole.headers["content-type"] == "application/octet-stream"
    head = api.get(url, headers={"Range": "bytes=100-199"}, auth=cloud.auth)
    assert head.status_code == 206 and head.content == data[100:200]


def test_empty_asset_content(api: httpx.Client, cloud: CloudControl,
                             paired_device: PairedDevice, tmp_path: Path) -> None:
    asset = upload(api, paired_device, b"")
    assert cloud.asset_content(asset["id"], tmp_path / "empty.mp4").read_bytes() == b""


def test_real_movie_probes_after_the_round_trip(api: httpx.Client, cloud: CloudControl,
                                                paired_device: PairedDevice,
                                                tmp_path: Path) -> None:
    source = tmp_path / "A001_C001.mp4"
    make_movie(source)
    cloud.update_settings(**SMALL_PARTS)
    asset = upload(api, paired_device, source.read_bytes(), parts=2)
    fetched = cloud.asset_content(asset["id"], tmp_path / "fetched.mp4")
    with av.open(str(fetched)) as movie:
        video = movie.streams.video[0]
        assert video.codec_context.name == "h264"
        assert (video.width, video.height) == (64, 48)
        assert sum(1 for _ in movie.decode(video)) == 12
        assert movie.metadata.get("timecode") == "01:02:03:04" or \
            video.metadata.get("timecode") == "01:02:03:04"


def test_incomplete_asset_is_404_and_writes_nothing(api: httpx.Client, cloud: CloudControl,
                                                    paired_device: PairedDevice,
                                                    tmp_path: Path) -> None:
    cloud.update_settings(**SMALL_PARTS)
    asset = upload(api, paired_device, os.urandom(9000), parts=3, upto=1)
    raw = api.get(f"/_bench/v1/assets/{asset['id']}/content", auth=cloud.auth)
    assert raw.status_code == 404
    assert "1 of 3 registered parts stored" in raw.json()["error"]
    dest = tmp_path / "clip.mp4"
    with pytest.raises(CloudError, match="no content yet: state created"):
        cloud.asset_content(asset["id"], dest)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("asset_id", ["3f0c4ad4-0000-4000-8000-000000000000", "not-a-uuid",
                                      "..%2F..%2Fstate.sqlite3", "%00"])
def test_unknown_asset_is_404(api: httpx.Client, cloud: CloudControl, asset_id: str,
                              tmp_path: Path) -> None:
    raw = api.get(f"/_bench/v1/assets/{asset_id}/content", auth=cloud.auth)
    assert raw.status_code == 404
    assert raw.json()["error"]
    with pytest.raises(CloudError, match="404"):
        cloud.asset_content(asset_id, tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


def test_missing_destination_directory_is_named(api: httpx.Client, cloud: CloudControl,
                                                paired_device: PairedDevice,
                                                tmp_path: Path) -> None:
    asset = upload(api, paired_device, b"abc")
    with pytest.raises(CloudError, match="is not a directory"):
        cloud.asset_content(asset["id"], tmp_path / "missing" / "x.bin")


def test_openapi_documents_asset_content(api: httpx.Client) -> None:
    schema = api.get("/_bench/openapi.json").json()
    answers = schema["paths"]["/assets/{asset_id}/content"]["get"]["responses"]
    assert "200" in answers and "404" in answers


def test_content_matches_the_ledger_hash(api: httpx.Client, cloud: CloudControl,
                                        paired_device: PairedDevice, tmp_path: Path) -> None:
    """The content of an asset uploaded with the shared helper equals its ledger hash."""
    data = os.urandom(777)
    answer = create_asset(api, paired_device, name="b.mov", filetype="video/quicktime",
                          filesize=len(data))
    put_parts(api, answer.json()["upload_urls"], data, "video/quicktime")
    row = cloud.ledger(paired_device.device_id)[0]
    fetched = cloud.asset_content(row["asset_id"], tmp_path / "b.mov")
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == row["sha256"]


def test_corrupt_stream_is_refused_and_leaves_no_file(cloud: CloudControl,
                                                      tmp_path: Path) -> None:
    """Logic check with a fake transport: bytes that do not hash to X-Asset-Sha256."""
    def lying(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not the file",
                              headers={"x-asset-sha256": hashlib.sha256(b"file").hexdigest()})

    control = CloudControl(cloud.api_url, cloud.ca_bundle)
    control._http = httpx.Client(base_url="https://fake/_bench/v1",
                                 transport=httpx.MockTransport(lying))
    with control, pytest.raises(CloudError, match="content is corrupt"):
        control.asset_content("a", tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []
