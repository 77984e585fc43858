"""Named network profiles: data, documentation, and applying/clearing them on a live link."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from harness.errors import ConfigError, FaultInjectionError
from harness.faults.network import PROFILES, NetworkLink, NetworkProfile, profiles
from harness.faults.network.client import ToxiproxyClient
from harness.faults.network.profiles import (
    Phase,
    ProfileScheduler,
    ToxicSpec,
    get_profile,
    isp_outage,
    load_profiles,
    mbps,
    mesh_roam,
)
from harness.faults.network.server import ToxiproxyServer
from tests.harness.faults.network.conftest import (
    EchoServer,
    can_connect,
    port_of,
    recv_exact,
    wait_for,
)

EXPECTED = {
    "hardline",
    "bonded-cellular",
    "cellular",
    "hotspot",
    "mesh-roam",
    "direct-modem",
    "isp-outage",
    "blackout",
}


def test_catalogue_is_complete_data_and_documented() -> None:
    assert set(PROFILES) == EXPECTED
    for name, profile in PROFILES.items():
        data = json.loads(json.dumps(profile.to_dict()))  # plain data, TOML/JSON-able
        assert NetworkProfile.from_dict(data) == profile, name
        assert profile.summary


def test_figures_match_their_documentation() -> None:
    assert mbps(1) == 125 and mbps(1000) == 125_000
    rates = {
        p.name: {t.stream: t.attributes["rate"] for t in p.toxics if t.type == "bandwidth"}
        for p in PROFILES.values()
    }
    assert rates["hardline"] == {"upstream": 125_000, "downstream": 125_000}
    assert rates["cellular"]["upstream"] == mbps(15)
    assert rates["hotspot"]["upstream"] == mbps(8)
    assert 20 <= rates["bonded-cellular"]["upstream"] / 125 <= 60
    assert PROFILES["blackout"].enabled is False
    roam = PROFILES["mesh-roam"]
    assert roam.repeat and [p.enabled for p in roam.phases] == [True, False]
    assert 0.5 <= roam.phases[1].seconds <= 2
    documented = {
        profiles.hardline: "1000/1000 Mbps",
        profiles.cellular: "15 up",
        profiles.hotspot: "8 up",
        profiles.direct_modem: "5 up",
        profiles.mesh_roam: "100/100 Mbps",
        profiles.bonded_cellular: "40 up",
    }
    for factory, figure in documented.items():
        assert figure in (factory.__doc__ or ""), factory.__name__


def test_bad_profile_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="toxic type"):
        ToxicSpec("poison")
    with pytest.raises(ConfigError, match="stream"):
        ToxicSpec("latency", "sideways")
    with pytest.raises(ConfigError, match="missing field 'name'"):
        NetworkProfile.from_dict({"summary": "no name"})
    with pytest.raises(ConfigError, match="unknown attributes"):
        ToxicSpec("latency", attributes={"latncy": 5})
    with pytest.raises(ConfigError, match=r"cannot unmarshal number 1\.5"):
        NetworkProfile.from_dict(
            {"name": "x", "toxics": [{"type": "latency", "attributes": {"latency": 1.5}}]}
        )
    with pytest.raises(ConfigError, match="bad field"):
        NetworkProfile.from_dict({"name": "x", "phases": [{"name": "p", "seconds": "soon"}]})
    with pytest.raises(ConfigError, match="unknown"):
        get_profile("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED - {"mesh-roam", "isp-outage"}))
def test_static_profiles_apply_and_clear(
    server: ToxiproxyServer, echo: EchoServer, name: str
) -> None:
    with (
        NetworkLink(echo.address, api_url=server.api_url) as link,
        ToxiproxyClient(server.api_url) as api,
    ):
        link.apply_profile(name)
        profile = PROFILES[name]
        assert {t["name"] for t in api.toxics(link.name)} == {s.toxic_name for s in profile.toxics}
        assert api.get_proxy(link.name)["enabled"] is profile.enabled
        if profile.enabled:
            with socket.create_connection(("127.0.0.1", port_of(link.listen)), timeout=5) as conn:
                conn.sendall(b"payload")
                assert recv_exact(conn, 7) == b"payload"
        link.clear()
        assert api.toxics(link.name) == [] and api.get_proxy(link.name)["enabled"] is True


def test_mesh_roam_cuts_periodically(server: ToxiproxyServer, echo: EchoServer) -> None:
    with NetworkLink(echo.address, api_url=server.api_url) as link:
        port = port_of(link.listen)
        link.apply_profile(mesh_roam(period=0.6, cut=0.3))
        wait_for(lambda: not can_connect(port), timeout=5)  # a roam
        wait_for(lambda: can_connect(port), timeout=5)  # back
        wait_for(lambda: not can_connect(port), timeout=5)  # and again
        link.clear()
        assert can_connect(port)
        phases = [
            e for e in link.timeline.events if e.name == "phase:roaming" and e.action == "start"
        ]
        assert len(phases) >= 2


def test_isp_outage_plays_once_then_recovers(server: ToxiproxyServer, echo: EchoServer) -> None:
    profile = isp_outage(blackhole=0.4, resets=0.4, refused=0.4)
    with (
        NetworkLink(echo.address, api_url=server.api_url) as link,
        ToxiproxyClient(server.api_url) as api,
    ):
        port = port_of(link.listen)
        link.apply_profile(profile)

        def names() -> set[str]:
            return {t["name"] for t in api.toxics(link.name)}

        wait_for(lambda: "outage_timeout" in names() or "outage_reset" in names(), timeout=5)
        wait_for(lambda: not can_connect(port), timeout=5)
        wait_for(
            lambda: can_connect(port) and not names() & {"outage_timeout", "outage_reset"},
            timeout=5,
        )
        assert names() == {s.toxic_name for s in profile.toxics}
        started = [
            e.name
            for e in link.timeline.events
            if e.action == "start" and e.name.startswith("phase:")
        ]
        assert started == ["phase:blackhole", "phase:resets", "phase:refused"]
        link.clear()


def test_scheduler_reports_errors_instead_of_dying_silently() -> None:
    seen: list[BaseException] = []

    def boom(phase: Phase | None) -> None:
        raise RuntimeError("api down")

    profile = NetworkProfile("x", "x", phases=(Phase("p", 0.01),))
    scheduler = ProfileScheduler(profile, boom, seen.append).start()
    wait_for(lambda: seen, timeout=5)
    scheduler.stop()
    assert str(scheduler.errors[0]) == "api down"


def test_profiles_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        """
[[profile]]
name = "satellite"
summary = "GEO satellite, 3 Mbps up / 600 ms"
toxics = [
  {type = "latency", stream = "upstream", attributes = {latency = 300, jitter = 20}},
  {type = "latency", stream = "downstream", attributes = {latency = 300}},
  {type = "bandwidth", stream = "upstream", attributes = {rate = 375}},
]

[[profile]]
name = "flaky"
summary = "cut 1 s every 5 s"
repeat = true
phases = [{name = "up", seconds = 4.0}, {name = "down", seconds = 1.0, enabled = false}]
"""
    )
    loaded = load_profiles(path)
    assert set(loaded) == {"satellite", "flaky"}
    assert loaded["satellite"].toxics[2].attributes == {"rate": 375}
    assert loaded["flaky"].phases[1].enabled is False
    for profile in PROFILES.values():  # the catalogue survives a TOML-shaped round trip (no None)
        assert "None" not in json.dumps(profile.to_dict()) and "null" not in json.dumps(
            profile.to_dict()
        )
    path.write_text("[[profile]]\nname = ")
    with pytest.raises(ConfigError, match=r"profiles\.toml"):
        load_profiles(path)


def test_failed_phase_change_is_recorded_and_raised_on_clear(
    server: ToxiproxyServer, echo: EchoServer
) -> None:
    clash = NetworkProfile(
        "clash",
        "a phase toxic named like a base toxic",
        toxics=(ToxicSpec("latency", name="dup"),),
        phases=(Phase("p", 0.05, toxics=(ToxicSpec("noop", name="dup"),)),),
        repeat=True,
    )
    with NetworkLink(echo.address, api_url=server.api_url) as link:
        link.apply_profile(clash)
        wait_for(lambda: any(e.name == "profile-error" for e in link.timeline.events))
        with pytest.raises(FaultInjectionError, match="409: toxic already exists"):
            link.clear()
        with ToxiproxyClient(server.api_url) as api:
            assert api.toxics(link.name) == []  # cleaned up all the same
