"""Inline assets of the emulator pages (a package so wheels ship the .html/.css/.js)."""
