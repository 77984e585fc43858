"""Reference C2C uploader: the checklist done right, and the harness's known-good device."""

__version__ = "1.0.0"
