"""Per-request context (request id, client) that flows into logs and events."""

import re
from contextvars import ContextVar
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
client_var: ContextVar[str | None] = ContextVar("client", default=None)

CLIENT_HEADER = "X-Hearth-Client"
_CLIENT = re.compile(r"^(web|ios|android|api(/[A-Za-z0-9._-]{1,64})?)$")


def parse_client(header: str | None) -> str | None:
    """`web|ios|android|api/<name>`; anything else is recorded as unknown rather than trusted."""
    if not header:
        return None
    header = header.strip().lower()
    return header if _CLIENT.match(header) else "unknown"


# The longest textual IP address (IPv6 with an embedded IPv4) is 45 characters; columns that store a
# client address use this size, and client_address never returns anything longer.
ADDRESS_MAX_LENGTH = 64


def parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """`10.0.0.0/8, 192.168.1.5` (HEARTH_TRUSTED_PROXIES) as networks; a bad entry is a startup error."""
    return tuple(ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


def _ip(value: str) -> IPv4Address | IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:5123"
        value = value.split(":")[0]
    try:
        address = ip_address(value.split("%")[0])  # a zone id ("fe80::1%eth0") says nothing about who
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple) -> str | None:
    """The address of the client: the direct peer, unless the peer is a trusted proxy.

    Behind trusted proxies, X-Forwarded-For is read from the right (each proxy appends the address it
    saw) and the first address that is not itself a trusted proxy is the client; everything to its
    left was written by the client and is ignored. The result is a normalized IP (at most 45
    characters), or the peer as given (cut to ADDRESS_MAX_LENGTH) when it is not an IP."""
    if peer is None:
        return None
    peer_ip = _ip(peer)
    if peer_ip is None:
        return peer[:ADDRESS_MAX_LENGTH]
    if not _trusted(peer_ip, trusted):
        return str(peer_ip)
    client = peer_ip
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:  # garbage only a client could have written: the last good hop is the answer
            break
        client = hop_ip
        if not _trusted(hop_ip, trusted):
            break
    return str(client)


def _trusted(address, trusted: tuple) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def request_client_address(request) -> str | None:
    """client_address for a Starlette request, with the app's HEARTH_TRUSTED_PROXIES."""
    state = request.app.state
    trusted = getattr(state, "trusted_proxies", None)
    if trusted is None:
        trusted = state.trusted_proxies = parse_networks(state.settings.trusted_proxies)
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)
