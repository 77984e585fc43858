"""Pairing and tokens over real HTTPS: c2c-api.md §3.1-3.4."""

from __future__ import annotations

import httpx
import pytest

from harness.cloud.control import CloudControl
from harness.cloud.testing import DEVICE_GRANT, PairedDevice, pair_device

from .conftest import assert_detailed


def code_form(cloud: CloudControl, client_id: str = "cam-1", **extra: str) -> dict[str, str]:
    return {"client_id": client_id, "client_secret": cloud.client_secret(),
            "scope": "asset_create offline", **extra}


def multipart(fields: dict[str, str]) -> dict[str, tuple[None, str]]:
    return {k: (None, v) for k, v in fields.items()}


def poll(api: httpx.Client, cloud: CloudControl, device_code: str, client_id: str = "cam-1",
         **extra: str) -> httpx.Response:
    form = {"grant_type": DEVICE_GRANT, "client_id": client_id,
            "client_secret": cloud.client_secret(), "device_code": device_code, **extra}
    return api.post("/v2/auth/token", files=multipart(form))


def refresh(api: httpx.Client, device: PairedDevice, token: str | None = None) -> httpx.Response:
    return api.post("/v2/auth/token", files=multipart({
        "grant_type": "refresh_token", "client_id": device.client_id,
        "client_secret": device.client_secret, "refresh_token": token or device.refresh_token}))


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def test_device_code_multipart_and_urlencoded(api: httpx.Client, cloud: CloudControl) -> None:
    first = api.post("/v2/auth/device/code", files=multipart(code_form(cloud)))
    second = api.post("/v2/auth/device/code", data=code_form(cloud, "cam-2"))
    for answer in (first, second):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["user_code"]) == 6 and body["user_code"].isdigit()
        assert 0 < body["expires_in"] <= 120 and body["interval"] == 5
        assert body["device_code"] and body["name"]
        assert body["verification_uri"] == f"{cloud.api_url}/pair"
        assert "verification_uri_complete" not in body
    assert first.json()["user_code"] != second.json()["user_code"]
    codes = {c["user_code"] for c in cloud.pending_codes()}
    assert {first.json()["user_code"], second.json()["user_code"]} <= codes


def test_url_pairing_only_when_asked(api: httpx.Client, cloud: CloudControl) -> None:
    answer = api.post("/v2/auth/device/code", data=code_form(cloud),
                      headers={"x-client-platypus-enabled": "true"})
    body = answer.json()
    assert body["verification_uri_complete"] == f"{cloud.api_url}/pair?code={body['user_code']}"


@pytest.mark.parametrize(("fields", "error"), [
    ({"client_secret": "wrong"}, "invalid_client"),
    ({"client_id": ""}, "invalid_request"),
    ({"scope": "asset_read"}, "invalid_scope"),
    ({"scope": ""}, "invalid_scope"),
])
def test_device_code_errors(api: httpx.Client, cloud: CloudControl, fields: dict[str, str],
                            error: str) -> None:
    answer = api.post("/v2/auth/device/code", data={**code_form(cloud), **fields})
    assert answer.status_code == 400 and answer.json()["error"] == error
    assert set(answer.json()) <= {"error", "error_description"}
    assert cloud.pending_codes() == []


@pytest.mark.parametrize("body", [b"\x00\xffgarbage", b'{"client_id": "x"}', b"--x\r\nbroken"])
@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data; boundary=x",
                                   "text/plain"])
def test_malformed_forms_are_invalid_request(api: httpx.Client, body: bytes, ctype: str) -> None:
    for path in ("/v2/auth/device/code", "/v2/auth/token", "/v2/auth/revoke"):
        answer = api.post(path, content=body, headers={"content-type": ctype})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"] in ("invalid_request", "invalid_client")


def test_poll_pending_slow_down_then_tokens_then_used(api: httpx.Client,
                                                      cloud: CloudControl) -> None:
    code = api.post("/v2/auth/device/code", data=code_form(cloud)).json()
    assert error_of(poll(api, cloud, code["device_code"])) == "authorization_pending"
    assert error_of(poll(api, cloud, code["device_code"])) == "slow_down"
    cloud.advance_clock(code["interval"] + 5 + 1)  # interval grew by 5 after slow_down
    assert error_of(poll(api, cloud, code["device_code"])) == "authorization_pending"
    project = cloud.create_project("P")
    cloud.approve(code["user_code"], project["id"])
    cloud.advance_clock(code["interval"] + 5 + 1)
    answer = poll(api, cloud, code["device_code"])
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 28800
    assert tokens["access_token"] and len(tokens["refresh_token"]) == 36
    cloud.advance_clock(30)
    assert error_of(poll(api, cloud, code["device_code"])) == "invalid_grant"


def test_slow_down_is_per_device_code(api: httpx.Client, cloud: CloudControl) -> None:
    one = api.post("/v2/auth/device/code", data=code_form(cloud, "a")).json()
    two = api.post("/v2/auth/device/code", data=code_form(cloud, "b")).json()
    assert error_of(poll(api, cloud, one["device_code"], "a")) == "authorization_pending"
    assert error_of(poll(api, cloud, two["device_code"], "b")) == "authorization_pending"


def test_code_expiry_is_expired_token(api: httpx.Client, cloud: CloudControl) -> None:
    code = api.post("/v2/auth/device/code", data=code_form(cloud)).json()
    cloud.advance_clock(code["expires_in"] + 1)
    assert error_of(poll(api, cloud, code["device_code"])) == "expired_token"
    assert code["user_code"] not in {c["user_code"] for c in cloud.pending_codes()}
    project = cloud.create_project("P")
    with pytest.raises(Exception, match="no live pending code"):
        cloud.approve(code["user_code"], project["id"])


def test_denied_is_access_denied(api: httpx.Client, cloud: CloudControl) -> None:
    code = api.post("/v2/auth/device/code", data=code_form(cloud)).json()
    cloud.deny(code["user_code"])
    assert error_of(poll(api, cloud, code["device_code"])) == "access_denied"
    assert cloud.devices() == []


def test_poll_errors(api: httpx.Client, cloud: CloudControl) -> None:
    code = api.post("/v2/auth/device/code", data=code_form(cloud)).json()
    assert error_of(poll(api, cloud, "00000000-0000-0000-0000-000000000000")) == "invalid_grant"
    assert error_of(poll(api, cloud, code["device_code"], client_secret="nope")) == "invalid_client"
    assert error_of(poll(api, cloud, code["device_code"], client_id="other")) == "invalid_grant"
    assert error_of(poll(api, cloud, "")) == "invalid_request"
    bad_grant = api.post("/v2/auth/token", data={"grant_type": "password"})
    assert error_of(bad_grant) == "invalid_request"


def test_poll_without_secret_lenient_then_strict(api: httpx.Client, cloud: CloudControl) -> None:
    code = api.post("/v2/auth/device/code", data=code_form(cloud)).json()
    form = {"grant_type": DEVICE_GRANT, "client_id": "cam-1", "device_code": code["device_code"]}
    assert error_of(api.post("/v2/auth/token", data=form)) == "authorization_pending"
    cloud.update_settings(strict_poll_secret=True)
    cloud.advance_clock(60)
    assert error_of(api.post("/v2/auth/token", data=form)) == "invalid_request"


def test_refresh_rotates_and_is_single_use(api: httpx.Client, cloud: CloudControl,
                                           paired_device: PairedDevice) -> None:
    answer = refresh(api, paired_device)
    assert answer.status_code == 200, answer.text
    new = answer.json()
    assert new["refresh_token"] != paired_device.refresh_token
    assert new["access_token"] != paired_device.access_token
    # The old refresh token is spent; the old access token stopped working.
    assert error_of(refresh(api, paired_device)) == "invalid_request"
    old = api.get("/v2/devices/me", headers=paired_device.headers)
    assert_detailed(old, 401, "Not Authorized")
    fresh = api.get("/v2/devices/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert fresh.status_code == 200
    again = refresh(api, paired_device, new["refresh_token"])
    assert again.status_code == 200


def test_refresh_errors(api: httpx.Client, cloud: CloudControl,
                        paired_device: PairedDevice) -> None:
    form = {"grant_type": "refresh_token", "client_id": paired_device.client_id,
            "client_secret": "wrong", "refresh_token": paired_device.refresh_token}
    assert error_of(api.post("/v2/auth/token", data=form)) == "invalid_client"
    form["client_secret"] = paired_device.client_secret
    form["refresh_token"] = "not-a-token"
    assert error_of(api.post("/v2/auth/token", data=form)) == "invalid_grant"
    del form["client_secret"]
    assert error_of(api.post("/v2/auth/token", data=form)) == "invalid_request"


def test_refresh_after_revoke_or_expiry_is_401(api: httpx.Client, cloud: CloudControl) -> None:
    revoked = pair_device(cloud, client_id="revoked-cam")
    cloud.revoke_device(revoked.device_id)
    assert_detailed(refresh(api, revoked), 401, "Not Authorized")
    assert_detailed(api.get("/v2/devices/me", headers=revoked.headers), 401)
    assert next(d for d in cloud.devices() if d["id"] == revoked.device_id)["revoked"]

    old = pair_device(cloud, client_id="old-cam")
    cloud.advance_clock(14 * 24 * 3600 + 1)
    assert_detailed(refresh(api, old), 401, "Not Authorized")


def test_access_token_expiry(api: httpx.Client, cloud: CloudControl,
                             paired_device: PairedDevice) -> None:
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200
    cloud.expire_tokens(paired_device.device_id)
    assert_detailed(api.get("/v2/devices/me", headers=paired_device.headers), 401)
    assert refresh(api, paired_device).status_code == 200


def test_short_access_lifetime_by_setting(api: httpx.Client, cloud: CloudControl) -> None:
    cloud.update_settings(access_token_lifetime=30)
    device = pair_device(cloud)
    cloud.advance_clock(31)
    assert_detailed(api.get("/v2/devices/me", headers=device.headers), 401)


@pytest.mark.parametrize("which", ["access", "refresh"])
def test_revoke_either_token_revokes_the_grant(api: httpx.Client, cloud: CloudControl,
                                               paired_device: PairedDevice, which: str) -> None:
    token = paired_device.access_token if which == "access" else paired_device.refresh_token
    answer = api.post("/v2/auth/revoke", files=multipart({
        "client_id": paired_device.client_id, "client_secret": paired_device.client_secret,
        "token": token}))
    assert answer.status_code == 200 and answer.json() == {"success": True}
    assert_detailed(api.get("/v2/devices/me", headers=paired_device.headers), 401)
    assert refresh(api, paired_device).status_code == 401
    revokes = [r for r in cloud.journal() if r["path"] == "/v2/auth/revoke"]
    assert [r["device_id"] for r in revokes] == [paired_device.device_id], "the revoke is the device's"


def test_revoke_errors(api: httpx.Client, paired_device: PairedDevice) -> None:
    form = {"client_id": paired_device.client_id, "client_secret": "bad",
            "token": paired_device.access_token}
    assert error_of(api.post("/v2/auth/revoke", data=form)) == "invalid_client"
    assert error_of(api.post("/v2/auth/revoke", data={"client_id": "x"})) == "invalid_request"
    assert api.get("/v2/devices/me", headers=paired_device.headers).status_code == 200


def test_repairing_moves_device_and_kills_old_grant(api: httpx.Client,
                                                    cloud: CloudControl) -> None:
    first = pair_device(cloud, client_id="mover", project_name="A")
    second = pair_device(cloud, client_id="mover", project_name="B")
    assert first.device_id == second.device_id and first.project_id != second.project_id
    assert_detailed(api.get("/v2/devices/me", headers=first.headers), 401)
    me = api.get("/v2/devices/me", headers=second.headers).json()
    assert me["project"] == {"_type": "project", "id": second.project_id, "name": "B"}


def test_added_client_secret_is_accepted(api: httpx.Client, cloud: CloudControl) -> None:
    added = cloud.add_client("Vendor X", min_firmware="2.0.0", socket_status=False)
    assert "client_secret" in added
    listed = [c for c in cloud._call("GET", "/clients") if c["name"] == "Vendor X"]
    assert listed and "client_secret" not in listed[0] and "secret_hash" not in listed[0]
    answer = api.post("/v2/auth/device/code", data={
        "client_id": "vx-1", "client_secret": added["client_secret"],
        "scope": "asset_create offline"})
    assert answer.status_code == 200


def test_legacy_spellings(api: httpx.Client, cloud: CloudControl) -> None:
    code = api.post("/v2/device/code", data=code_form(cloud))
    assert code.status_code == 200, code.text
    polled = api.get("/v2/auth/token", params={
        "grant_type": DEVICE_GRANT, "client_id": "cam-1",
        "device_code": code.json()["device_code"]})
    assert error_of(polled) == "authorization_pending"
    cloud.update_settings(legacy_paths=False)
    assert api.post("/v2/device/code", data=code_form(cloud)).status_code == 404
    assert api.get("/v2/auth/token", params={"grant_type": DEVICE_GRANT}).status_code == 405
    assert api.post("/v2/auth/device/code", data=code_form(cloud)).status_code == 200


def test_current_user_needs_a_valid_token(api: httpx.Client, paired_device: PairedDevice) -> None:
    """GET /v2/me (§3.15, some cameras call it): the grant's user with a token, 401 without."""
    me = api.get("/v2/me", headers=paired_device.headers)
    assert me.status_code == 200 and me.json()["_type"] == "user" and me.json()["id"]
    device = api.get("/v2/devices/me", headers=paired_device.headers).json()
    assert me.json()["id"] == device["creator_id"]
    assert_detailed(api.get("/v2/me"), 401)
