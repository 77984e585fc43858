"""Listen addresses as Toxiproxy (Go) spells them: parse `host:port` / `[v6]:port`, resolve,
bind, and report bind failures in Go's words, so a Toxiproxy client reads our errors as its own."""

from __future__ import annotations

import errno
import os
import socket


class ListenError(Exception):
    """A listener could not be opened; the message is Go's (`listen tcp ...: bind: ...`)."""


def split_host_port(address: str) -> tuple[str, str]:
    """Split `host:port` / `[v6]:port` like Go's net.SplitHostPort."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"address {address}: missing ']' in address")
        rest = address[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        return address[1:end], rest[1:]
    if ":" not in address:
        raise ValueError(f"address {address}: missing port in address")
    host, _, port = address.rpartition(":")
    if ":" in host:
        raise ValueError(f"address {address}: too many colons in address")
    return host, port


def resolve_listen(address: str) -> tuple[int, str, int]:
    """(family, bind host, port) for a Toxiproxy listen string. Raises ListenError."""
    try:
        host, port_text = split_host_port(address) if address else ("", "0")
    except ValueError as exc:
        raise ListenError(f"listen tcp {address}: {exc}") from None
    if port_text == "":
        port_text = "0"
    try:
        port = socket.getservbyname(port_text, "tcp") if not port_text.isdigit() else int(port_text)
    except OSError:
        raise ListenError(f"listen tcp {address}: address {port_text}: unknown port") from None
    if not 0 <= port <= 65535:
        raise ListenError(f"listen tcp {address}: address {port_text}: invalid port")
    if host in ("", "::"):
        return (
            (socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET),
            ("::" if socket.has_ipv6 else "0.0.0.0"),
            port,
        )
    if host == "localhost":
        return socket.AF_INET, "127.0.0.1", port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ListenError(f"listen tcp {address}: lookup {host}: no such host") from None
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0]), port


def format_address(family: int, host: str, port: int) -> str:
    if family == socket.AF_INET6:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def open_listener(address: str, *, listen: bool = True) -> tuple[socket.socket, str]:
    """Bind and listen; return the socket and the bound address as Go reports it.

    `listen=False` binds only: the port stays this proxy's while connects to it are refused
    (a disabled proxy).
    """
    family, host, port = resolve_listen(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        if listen:
            sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use"
        raise ListenError(
            f"listen tcp {format_address(family, host, port)}: bind: {reason}"
        ) from None
    bound_host, bound_port = sock.getsockname()[:2]
    return sock, format_address(family, bound_host, bound_port)
