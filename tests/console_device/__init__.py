"""A console-only C2C uploader written from the API contract alone (issue #14).

Not ours in spirit: it imports nothing from reference_device/ or harness/ (stdlib + httpx),
has no status API and no control API, and prints its pairing code on stdout. Unlike
tests/minimal_uploader (the deliberately incomplete example) it is meant to be correct,
so that `c2c-certify run --device independent` (fixtures/devices/independent.toml)
certifies it. `--defect NAME` (or
C2C_CONSOLE_DEFECT) builds one of three seeded-defect variants for the mutant matrix.
"""
