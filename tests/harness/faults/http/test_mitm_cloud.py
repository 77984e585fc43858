"""mitmproxy in reverse mode in front of the real cloud emulator (bench CA, keep_host_header)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from harness.cloud.testing import FIRMWARE, cloud, cloud_process, paired_device  # noqa: F401
from harness.faults.http.addons import ErrorInjector, ErrorRule, HeaderAudit
from harness.faults.http.runner import MitmProxy


def test_errors_and_audit_in_front_of_the_emulator(tmp_path: Path, cloud, paired_device) -> None:  # noqa: F811
    audit, injector = HeaderAudit(), ErrorInjector()
    proxy = MitmProxy(f"reverse:{cloud.api_url}@127.0.0.1:0", [audit, injector], tmp_path / "mitm",
                      ssl_verify_upstream_trusted_ca=str(cloud.ca_bundle), keep_host_header=True)
    with proxy:
        port = proxy.port
        headers = {"Authorization": f"Bearer {paired_device.access_token}",
                   "x-client-version": FIRMWARE}
        verify = ssl.create_default_context(cafile=proxy.ca_cert)
        with httpx.Client(base_url=proxy.url, verify=verify, headers=headers, timeout=30) as http:
            assert http.get("/v2/devices/me").status_code == 200
            injector.add(ErrorRule(kind="unauthorized", target="api", path=r"^/v2/devices/me"))
            denied = http.get("/v2/devices/me")
            assert denied.status_code == 401
            assert denied.json()["message"] == "Not Authorized"
            assert http.get("/v2/devices/me").status_code == 200
    records = audit.records
    assert [r.path for r in records] == ["/v2/devices/me"] * 3
    assert {r.client_version for r in records} == {FIRMWARE}
    assert {r.auth_scheme for r in records} == {"Bearer"}
    assert paired_device.access_token not in repr(records)
    # the emulator saw the device's Host (the proxy's), not its own: signed URLs stay valid
    proxied = [j for j in cloud.journal() if j["path"] == "/v2/devices/me"
               and j["headers"].get("host") == f"127.0.0.1:{port}"]
    assert [j["status"] for j in proxied] == [200, 200]  # the 401 never reached the emulator
