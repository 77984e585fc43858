"""Logging for the device: a file in the state dir (and stderr), through the secret redactor."""

from __future__ import annotations

import logging
from pathlib import Path

from reference_device.config import DeviceConfig
from reference_device.credentials import install_redactor


def setup_logging(config: DeviceConfig, *, stderr: bool = True) -> Path:
    """Log to the state dir (and stderr) through the secret redactor."""
    log_path = config.log_file or (config.state_dir / "device.log")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    handlers: list[logging.Handler] = [logging.FileHandler(log_path)]
    if stderr:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    install_redactor(root)
    return log_path
