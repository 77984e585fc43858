"""c2c-bench certification harness: cloud emulator oracle, fault injectors, device drivers."""

__version__ = "0.1.0"
