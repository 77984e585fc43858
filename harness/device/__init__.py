"""Device drivers: profiles (TOML), software devices launched from a template, operator devices.

    from harness.device import load_profile, SoftwareDevice
"""

from harness.device.operator import OperatorDevice, OperatorPrompt
from harness.device.profile import DeviceProfile, load_profile, parse_profile
from harness.device.software import SoftwareDevice

__all__ = ["DeviceProfile", "OperatorDevice", "OperatorPrompt", "SoftwareDevice", "load_profile", "parse_profile"]
