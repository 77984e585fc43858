"""Auth and cloud-state faults: tokens expired or revoked, the device paused, settings or the clock changed."""

from __future__ import annotations

from functools import partial

from harness.errors import ConfigError
from harness.faults.vocabulary.language import Fault, StopFn, register, until_stopped
from harness.faults.vocabulary.targets import FaultTargets


def _device_id(t: FaultTargets, f: Fault, required: bool) -> str | None:
    device_id = f.params.get("device_id", t.device_id)
    if required and device_id is None:
        raise ConfigError(f"fault {f} needs a device_id (parameter or FaultTargets.device_id)")
    return None if device_id is None else str(device_id)


@register("auth", "expire-tokens")
def _expire_tokens(t: FaultTargets, f: Fault) -> None:
    cloud = t.cloud_for(f)
    cloud.expire_tokens(_device_id(t, f, required=False))


@register("auth", "revoke")
def _revoke(t: FaultTargets, f: Fault) -> None:
    cloud = t.cloud_for(f)
    cloud.revoke_device(str(_device_id(t, f, required=True)))


@register("cloud", "pause")
def _pause(t: FaultTargets, f: Fault) -> StopFn:
    cloud = t.cloud_for(f)
    device_id = str(_device_id(t, f, required=True))
    return until_stopped(partial(cloud.pause_device, device_id),
                         partial(cloud.resume_device, device_id))


@register("cloud", "settings")
def _settings(t: FaultTargets, f: Fault) -> StopFn:
    """Change emulator settings (`device_code_lifetime=12`); stopping puts back what was there."""
    if not f.params:
        raise ConfigError(f"fault {f} needs at least one KEY=VALUE setting")
    cloud = t.cloud_for(f)
    before = cloud.update_settings()
    cloud.update_settings(**f.params)
    restore = {k: before[k] for k in f.params if k in before}

    def put_back() -> None:
        if restore:
            cloud.update_settings(**restore)

    return put_back


@register("cloud", "rename-project")
def _rename_project(t: FaultTargets, f: Fault) -> None:
    project_id = f.params.get("project_id", t.project_id)
    name = f.params.get("name")
    if project_id is None or not name:
        raise ConfigError(f"fault {f} needs project_id (or FaultTargets.project_id) and name=")
    cloud = t.cloud_for(f)
    cloud.rename_project(str(project_id), str(name))


@register("cloud", "advance-clock")
def _advance_clock(t: FaultTargets, f: Fault) -> None:
    seconds = f.params.get("seconds", f.params.get("duration"))
    if seconds is None:
        raise ConfigError(f"fault {f} needs seconds= or a duration like 3600s")
    cloud = t.cloud_for(f)
    cloud.advance_clock(float(seconds))
