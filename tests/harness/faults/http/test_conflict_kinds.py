"""The 409 asset-creation kinds injected by mitmproxy (real TLS on loopback): same table, same body."""

from __future__ import annotations

from harness.faults.http.addons import ErrorInjector, ErrorRule

from .test_mitm import client_for, make_proxy  # noqa: F401 - the fixture


def test_409_kinds_through_the_proxy(make_proxy, tls_upstream) -> None:  # noqa: F811
    injector = ErrorInjector([
        ErrorRule(kind="conflict_slow_down", target="api", path=r"^/v2/devices/assets$", count=2),
        ErrorRule(kind="conflict_invalid_client", target="api", path=r"^/v2/assets$", retry_after=5),
    ])
    proxy = make_proxy([injector])
    with client_for(proxy) as client:
        slowed = [client.post("/v2/devices/assets", json={"name": "a"}) for _ in range(2)]
        passed = client.post("/v2/devices/assets", json={"name": "a"})
        refused = client.post("/v2/assets", json={"name": "a"})
    for answer in slowed:
        assert answer.status_code == 409 and answer.json()["message"] == "slow_down"
        assert answer.json()["errors"][0]["title"] == "slow_down"
    assert passed.status_code == 200  # count spent: the upstream answered
    assert refused.status_code == 409 and refused.json()["message"] == "invalid_client"
    assert refused.headers["retry-after"] == "5"
    assert [(i.kind, i.status) for i in injector.injections] == [
        ("conflict_slow_down", 409), ("conflict_slow_down", 409), ("conflict_invalid_client", 409)]
    assert len(tls_upstream.received) == 1
