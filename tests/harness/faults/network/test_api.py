"""API compatibility with Toxiproxy v2.12.0 through raw HTTP (ports api_test.go's checks)."""

from __future__ import annotations

import json
import socket

import httpx

from tests.harness.faults.network.conftest import EchoServer, can_connect, port_of


def test_version_body_and_content_type(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"] == "application/json;charset=utf-8"


def test_request_id_on_matched_routes_only(api: httpx.Client) -> None:
    assert api.get("/proxies").headers.get("x-toxiproxy-request-id")
    missing = api.get("/nope")
    assert missing.status_code == 404
    assert missing.content == b"404 page not found\n"
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    assert "x-toxiproxy-request-id" not in missing.headers


def test_browser_user_agent_is_refused(api: httpx.Client) -> None:
    refused = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert refused.status_code == 403
    assert refused.content == b"User agent not allowed\n"
    assert refused.headers["content-type"].startswith("text/plain")
    assert api.get("/proxies", headers={"User-Agent": "Wget/1.21"}).status_code == 200


def test_wrong_method_405_and_trailing_slash_404(api: httpx.Client) -> None:
    wrong = api.put("/proxies", json={})
    assert wrong.status_code == 405
    assert wrong.content == b""
    assert api.delete("/version").status_code == 405
    assert api.get("/proxies/").status_code == 404
    assert api.get("/metrics").status_code == 404


def test_empty_index(api: httpx.Client) -> None:
    response = api.get("/proxies")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}


def test_create_missing_fields_exact_errors(api: httpx.Client) -> None:
    no_name = api.post("/proxies", json={"upstream": "localhost:1"})
    assert no_name.status_code == 400
    assert no_name.content == b'{"error":"missing required field: name","status":400}\n'
    assert no_name.headers["content-type"] == "text/plain; charset=utf-8"
    no_upstream = api.post("/proxies", json={"name": "x"})
    assert no_upstream.json() == {"error": "missing required field: upstream", "status": 400}
    empty = api.post("/proxies", content=b"")
    assert empty.json() == {"error": "bad request body: EOF", "status": 400}
    garbage = api.post("/proxies", content=b"{nope")
    assert garbage.status_code == 400
    assert garbage.json()["error"].startswith("bad request body: ")
    wrong_type = api.post("/proxies", json={"name": 5, "upstream": "x:1"})
    assert wrong_type.status_code == 400
    assert (
        "cannot unmarshal number into Go struct field Proxy.name of type string"
        in wrong_type.json()["error"]
    )


def test_create_shape_key_order_and_listen_rewrite(api: httpx.Client, echo: EchoServer) -> None:
    response = api.post(
        "/proxies", json={"name": "cam", "upstream": echo.address, "listen": "localhost:0"}
    )
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
    assert body["Logger"] == {} and body["toxics"] == [] and body["enabled"] is True
    assert body["listen"].startswith("127.0.0.1:") and port_of(body["listen"]) > 0
    assert body["upstream"] == echo.address
    listed = api.get("/proxies").json()
    assert listed["cam"]["listen"] == body["listen"]
    assert api.get("/proxies/cam").json() == body
    assert can_connect(port_of(body["listen"]))


def test_create_disabled_keeps_listen_verbatim(api: httpx.Client, echo: EchoServer) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    body = api.post(
        "/proxies",
        json={
            "name": "off",
            "upstream": echo.address,
            "listen": f"localhost:{port}",
            "enabled": False,
        },
    ).json()
    assert body["listen"] == f"localhost:{port}"
    assert body["enabled"] is False
    assert not can_connect(port)


def test_name_conflict_409_and_port_conflict_500(api: httpx.Client, echo: EchoServer) -> None:
    first = api.post(
        "/proxies", json={"name": "a", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()
    dup = api.post("/proxies", json={"name": "a", "upstream": echo.address})
    assert dup.status_code == 409
    assert dup.json() == {"error": "proxy already exists", "status": 409}
    clash = api.post(
        "/proxies", json={"name": "b", "upstream": echo.address, "listen": first["listen"]}
    )
    assert clash.status_code == 500
    assert clash.json()["error"] == f"listen tcp {first['listen']}: bind: address already in use"
    assert "b" not in api.get("/proxies").json()
    assert api.delete("/proxies/a").status_code == 204
    again = api.post(
        "/proxies", json={"name": "b", "upstream": echo.address, "listen": first["listen"]}
    )
    assert again.status_code == 201


def test_update_enable_disable_and_patch(api: httpx.Client, echo: EchoServer) -> None:
    body = api.post(
        "/proxies", json={"name": "u", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()
    port = port_of(body["listen"])
    off = api.patch("/proxies/u", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert not can_connect(port)
    on = api.post("/proxies/u", json={"enabled": True})  # deprecated POST still works
    assert on.status_code == 200 and on.json()["enabled"] is True
    assert on.json()["listen"] == body["listen"]
    assert can_connect(port)
    assert api.patch("/proxies/missing", json={"enabled": True}).json() == {
        "error": "proxy not found",
        "status": 404,
    }
    moved = api.patch("/proxies/u", json={"listen": "localhost:0"}).json()
    assert moved["listen"] != body["listen"] and moved["enabled"] is True


def test_hostname_equivalent_update_keeps_connection(api: httpx.Client, echo: EchoServer) -> None:
    body = api.post(
        "/proxies", json={"name": "h", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()
    port = port_of(body["listen"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"one")
        assert conn.recv(3) == b"one"
        same = api.patch("/proxies/h", json={"listen": f"localhost:{port}"})
        assert same.json()["listen"] == body["listen"]
        conn.sendall(b"two")
        assert conn.recv(3) == b"two"


def test_delete_closes_port_and_second_delete_404(api: httpx.Client, echo: EchoServer) -> None:
    body = api.post(
        "/proxies", json={"name": "d", "upstream": echo.address, "listen": "127.0.0.1:0"}
    ).json()
    gone = api.delete("/proxies/d")
    assert gone.status_code == 204 and gone.content == b""
    assert not can_connect(port_of(body["listen"]))
    assert api.delete("/proxies/d").json() == {"error": "proxy not found", "status": 404}
    assert api.get("/proxies/d").status_code == 404


def test_populate_semantics(api: httpx.Client, echo: EchoServer) -> None:
    made = api.post(
        "/populate",
        json=[
            {"name": "one", "upstream": echo.address, "listen": "127.0.0.1:0"},
            {"name": "two", "upstream": echo.address, "listen": "127.0.0.1:0", "enabled": False},
        ],
    )
    assert made.status_code == 201
    proxies = made.json()["proxies"]
    assert [p["name"] for p in proxies] == ["one", "two"]
    assert can_connect(port_of(proxies[0]["listen"]))
    assert proxies[1]["enabled"] is False
    # existing + same resolved listen: untouched, toxics kept
    api.post("/proxies/one/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    one_listen = proxies[0]["listen"]
    again = api.post(
        "/populate",
        json=[
            {
                "name": "one",
                "upstream": echo.address,
                "listen": one_listen.replace("127.0.0.1", "localhost"),
            }
        ],
    )
    assert again.status_code == 201
    assert again.json()["proxies"][0]["listen"] == one_listen
    assert len(again.json()["proxies"][0]["toxics"]) == 1
    # blank name: nothing created, 1-based index
    blank = api.post(
        "/populate", json=[{"name": "three", "upstream": "x:1"}, {"name": "", "upstream": "x:1"}]
    )
    assert blank.status_code == 400
    assert blank.json() == {
        "error": "missing required field: name at proxy 2",
        "status": 400,
        "proxies": None,
    }
    assert "three" not in api.get("/proxies").json()
    # bad listen: the first is created, the error names the listen
    bad = api.post(
        "/populate",
        json=[
            {"name": "four", "upstream": echo.address, "listen": "127.0.0.1:0"},
            {"name": "five", "upstream": echo.address, "listen": "local373"},
        ],
    )
    assert bad.status_code == 500
    assert "local373" in bad.json()["error"]
    assert [p["name"] for p in bad.json()["proxies"]] == ["four"]
    names = set(api.get("/proxies").json())
    assert "four" in names and "five" not in names
    not_array = api.post("/populate", json={"name": "x"})
    assert not_array.status_code == 400
    assert not_array.json()["error"].startswith("bad request body: json: cannot unmarshal object")


def test_reset_enables_and_removes_toxics(api: httpx.Client, echo: EchoServer) -> None:
    body = api.post(
        "/proxies",
        json={"name": "r", "upstream": echo.address, "listen": "127.0.0.1:0", "enabled": False},
    ).json()
    api.patch("/proxies/r", json={"enabled": True})
    api.post("/proxies/r/toxics", json={"type": "latency", "stream": "upstream"})
    api.patch("/proxies/r", json={"enabled": False})
    reset = api.post("/reset")
    assert reset.status_code == 204 and reset.content == b""
    after = api.get("/proxies/r").json()
    assert after["enabled"] is True and after["toxics"] == []
    assert can_connect(port_of(after["listen"]))
    del body


def test_toxic_create_shapes_defaults_and_errors(api: httpx.Client, echo: EchoServer) -> None:
    api.post("/proxies", json={"name": "t", "upstream": echo.address, "listen": "127.0.0.1:0"})
    made = api.post("/proxies/t/toxics", json={"type": "latency", "attributes": {"latency": 100}})
    assert made.status_code == 200
    assert made.content == (
        b'{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency",'
        b'"stream":"downstream","toxicity":1}'
    )
    up = api.post(
        "/proxies/t/toxics", json={"type": "latency", "stream": "upstream", "toxicity": 0.2}
    )
    assert up.json()["name"] == "latency_upstream" and b'"toxicity":0.2' in up.content
    assert api.post(
        "/proxies/t/toxics",
        json={"type": "latency", "name": "latency_upstream", "stream": "downstream"},
    ).json() == {
        "error": "toxic already exists",
        "status": 409,
    }
    named = api.post(
        "/proxies/t/toxics", json={"type": "latency", "name": "lat2", "attributes": {"latency": 5}}
    )
    assert named.status_code == 200
    assert api.post("/proxies/t/toxics", json={"type": "latency", "stream": "sideways"}).json() == {
        "error": "stream was invalid, can be either upstream or downstream",
        "status": 400,
    }
    assert api.post("/proxies/t/toxics", json={"type": "latency", "stream": ""}).status_code == 400
    upper = api.post("/proxies/t/toxics", json={"type": "noop", "stream": "UPSTREAM"}).json()
    assert upper["stream"] == "UPSTREAM" and upper["name"] == "noop_UPSTREAM"
    assert api.post("/proxies/t/toxics", json={"type": "poison"}).json() == {
        "error": "invalid toxic type",
        "status": 400,
    }
    assert api.post("/proxies/t/toxics", json={}).json()["error"] == "invalid toxic type"
    floaty = api.post(
        "/proxies/t/toxics", json={"type": "bandwidth", "attributes": {"rate": 100.0}}
    )
    assert floaty.status_code == 400
    assert floaty.json()["error"].startswith("bad request body: json: cannot unmarshal number")
    noop = api.post("/proxies/t/toxics", json={"type": "noop"}).json()
    assert noop == {
        "attributes": {},
        "name": "noop_downstream",
        "type": "noop",
        "stream": "downstream",
        "toxicity": 1,
    }
    slicer = api.post(
        "/proxies/t/toxics", json={"type": "slicer", "attributes": {"average_size": 0}}
    )
    assert slicer.status_code == 400 and slicer.json()["error"].startswith("bad request body")
    assert api.post("/proxies/nope/toxics", json={"type": "noop"}).json() == {
        "error": "proxy not found",
        "status": 404,
    }
    listed = api.get("/proxies/t/toxics").json()
    assert [t["name"] for t in listed] == [
        "latency_upstream",
        "noop_UPSTREAM",
        "latency_downstream",
        "lat2",
        "noop_downstream",
    ]
    assert list(listed[0]) == ["attributes", "name", "type", "stream", "toxicity"]


def test_toxic_attributes_zero_filled_per_type(api: httpx.Client, echo: EchoServer) -> None:
    api.post("/proxies", json={"name": "z", "upstream": echo.address, "listen": "127.0.0.1:0"})
    expected = {
        "latency": {"latency": 0, "jitter": 0},
        "bandwidth": {"rate": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0},
        "limit_data": {"bytes": 0},
    }
    for kind, attrs in expected.items():
        made = api.post("/proxies/z/toxics", json={"type": kind, "stream": "upstream"})
        assert made.json()["attributes"] == attrs, kind
    slicer = api.post(
        "/proxies/z/toxics", json={"type": "slicer", "attributes": {"average_size": 10}}
    ).json()
    assert list(slicer["attributes"]) == ["average_size", "size_variation", "delay"]


def test_toxic_get_update_remove(api: httpx.Client, echo: EchoServer) -> None:
    api.post("/proxies", json={"name": "g", "upstream": echo.address, "listen": "127.0.0.1:0"})
    api.post(
        "/proxies/g/toxics",
        json={"type": "latency", "toxicity": 0.5, "attributes": {"latency": 10, "jitter": 3}},
    )
    updated = api.patch(
        "/proxies/g/toxics/latency_downstream",
        json={"attributes": {"latency": 20}, "type": "bandwidth"},
    )
    assert updated.status_code == 200
    assert updated.json() == {
        "attributes": {"latency": 20, "jitter": 3},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.5,
    }
    post_update = api.post("/proxies/g/toxics/latency_downstream", json={"toxicity": 1})
    assert post_update.json()["toxicity"] == 1
    assert api.get("/proxies/g/toxics/latency_downstream").json()["attributes"]["latency"] == 20
    assert api.get("/proxies/g/toxics/missing").json() == {
        "error": "toxic not found",
        "status": 404,
    }
    assert api.delete("/proxies/g/toxics/latency_downstream").status_code == 204
    assert api.delete("/proxies/g/toxics/latency_downstream").json() == {
        "error": "toxic not found",
        "status": 404,
    }
    assert api.get("/proxies/g/toxics").json() == []


def test_go_json_escaping_in_errors(api: httpx.Client) -> None:
    api.post("/proxies", json={"name": "<&>", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"})
    raw = api.get("/proxies").content
    assert b"\\u003c\\u0026\\u003e" in raw
    assert json.loads(raw)["<&>"]["name"] == "<&>"


def test_keep_alive_and_malformed_request(server: object, api: httpx.Client) -> None:
    for _ in range(3):
        assert api.get("/version").status_code == 200
    host, port = api.base_url.host, api.base_url.port
    assert port is not None
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_metrics_only_with_proxy_metrics(echo: EchoServer) -> None:
    from harness.faults.network.server import ToxiproxyServer

    with (
        ToxiproxyServer(proxy_metrics=True) as srv,
        httpx.Client(base_url=srv.api_url, timeout=10) as api,
    ):
        body = api.post(
            "/proxies", json={"name": "m", "upstream": echo.address, "listen": "127.0.0.1:0"}
        ).json()
        with socket.create_connection(("127.0.0.1", port_of(body["listen"])), timeout=5) as conn:
            conn.sendall(b"12345")
            assert conn.recv(5) == b"12345"
        text = api.get("/metrics").text
        assert "# TYPE toxiproxy_proxy_received_bytes_total counter" in text
        line = (
            'toxiproxy_proxy_received_bytes_total{direction="upstream",'
            f'listener="{body["listen"]}",proxy="m",upstream="{echo.address}"}} 5'
        )
        assert line in text
        assert 'toxiproxy_proxy_sent_bytes_total{direction="downstream"' in text


def test_expect_100_continue_and_chunked_body(api: httpx.Client, echo: EchoServer) -> None:
    host, port = api.base_url.host, api.base_url.port
    assert port is not None
    body = json.dumps({"name": "c", "upstream": echo.address, "listen": "127.0.0.1:0"}).encode()
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(
            b"POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert raw.recv(25).startswith(b"HTTP/1.1 100 Continue")
        raw.sendall(body)
        assert raw.recv(4096).startswith(b"HTTP/1.1 201 Created")
    chunked = api.post("/proxies/c/toxics", content=iter([b'{"type":', b'"noop"}']))
    assert chunked.status_code == 200 and chunked.json()["type"] == "noop"
