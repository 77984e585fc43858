"""HTTP and TLS faults through mitmproxy 12 running in-process: error injection by rule,
header audit, mid-body kills and an untrusted-CA interceptor (C2C-SEC-02)."""

from __future__ import annotations

from harness.faults.http.addons import ErrorInjector, ErrorRule, FlowKiller, HeaderAudit
from harness.faults.http.interceptor import Interceptor, untrusted_interception
from harness.faults.http.runner import MitmProxy

__all__ = [
    "ErrorInjector",
    "ErrorRule",
    "FlowKiller",
    "HeaderAudit",
    "Interceptor",
    "MitmProxy",
    "untrusted_interception",
]
