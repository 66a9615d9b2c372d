"""`host:port` strings the way Go's `net` package splits, resolves and listens on them, with its error texts.

Toxiproxy reports listen failures as Go formats them (`listen tcp 127.0.0.1:19100: bind: address
already in use`, `listen tcp: address local373: missing port in address`), and compares a proxy's
listen address after `net.ResolveTCPAddr` (`localhost:P` equals `127.0.0.1:P`). One deliberate
difference, for a lab: an empty host (`""`, `":P"`) binds 127.0.0.1, not every interface; a host
given explicitly (`0.0.0.0:P`, `[::]:P`) is bound as given.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


class AddressError(Exception):
    """An address Go would refuse; `str()` is Go's error text."""


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int


def split_host_port(address: str) -> tuple[str, str]:
    """Go's `net.SplitHostPort`, with its error texts."""
    def fail(why: str) -> AddressError:
        return AddressError(f"address {address}: {why}")

    last = address.rfind(":")
    if last < 0:
        raise fail("missing port in address")
    j = k = 0
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(address):
            raise fail("missing port in address")
        if end + 1 != last:
            raise fail("too many colons in address" if address[end + 1] == ":" else "missing port in address")
        host = address[1:end]
        j, k = 1, end + 1
    else:
        host = address[:last]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in address[j:]:
        raise fail("unexpected '[' in address")
    if "]" in address[k:]:
        raise fail("unexpected ']' in address")
    return host, address[last + 1:]


def _port(port: str) -> int:
    if port == "":
        return 0
    if port.isdigit():
        value = int(port)
        if value > 0xFFFF:
            raise AddressError(f"address {port}: invalid port")
        return value
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise AddressError(f"lookup tcp/{port}: unknown port") from None


def _literal_ip(host: str) -> str | None:
    if host in ("", "localhost"):
        return LOOPBACK if host == "localhost" else ""
    try:
        return str(ipaddress.ip_address(host.split("%")[0]))
    except ValueError:
        return None


async def _lookup(host: str) -> str:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise AddressError(f"lookup {host}: no such host") from None
    for family in (socket.AF_INET, socket.AF_INET6):  # Go prefers IPv4 for "tcp"
        for info in infos:
            if info[0] == family:
                return str(info[4][0])
    raise AddressError(f"lookup {host}: no such host")


def format_host_port(host: str, port: int) -> str:
    """Go's `TCPAddr.String()`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve(address: str) -> HostPort:
    """Go's `net.ResolveTCPAddr("tcp", address)`: `AddressError` with Go's text if it cannot."""
    if address == "":
        return HostPort("", 0)
    host, port_text = split_host_port(address)
    port = _port(port_text)
    ip = _literal_ip(host)
    return HostPort(ip if ip is not None else await _lookup(host), port)


async def resolved_string(address: str) -> str:
    resolved = await resolve(address)
    return format_host_port(resolved.host, resolved.port) if resolved.host else f":{resolved.port}"


_ERRNO_TEXT = {errno.EADDRINUSE: "address already in use", errno.EADDRNOTAVAIL: "cannot assign requested address",
               errno.EACCES: "permission denied"}


async def listen(address: str) -> socket.socket:
    """A bound, listening TCP socket for `address`, or `AddressError` with Go's `net.Listen` text."""
    try:
        resolved = await resolve(address)
    except AddressError as exc:
        raise AddressError(f"listen tcp: {exc}") from None
    host = resolved.host or LOOPBACK  # lab default: loopback unless a host is given
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only for a listener that says it is TCP
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
        sock.bind((host, resolved.port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        text = _ERRNO_TEXT.get(exc.errno or 0) or os.strerror(exc.errno or 0).lower()
        raise AddressError(f"listen tcp {format_host_port(host, resolved.port)}: bind: {text}") from None
    return sock


def bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return format_host_port(str(host), int(port))


async def dial_targets(address: str) -> list[HostPort]:
    """Where to connect for an upstream `address` (tried in order); `AddressError` if none."""
    resolved = await resolve(address)
    if resolved.host == "":
        return [HostPort(LOOPBACK, resolved.port)]
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return [HostPort(LOOPBACK, resolved.port), HostPort("::1", resolved.port)]
    return [resolved]
