"""ICMPv6 echo probes over the mesh, many targets on one raw socket.

The failover agent asks each controller's mesh address for an echo reply
every interval. A reply proves the whole path: the WireGuard session, the
controller's wireguard-go and its kernel. Handshake age cannot tell that in
time: a session only rekeys every two minutes.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
# Socket option numbers from <netinet/icmp6.h> and <linux/in6.h>; Python's
# socket module does not export them.
ICMP6_FILTER = 1
SO_BINDTODEVICE = 25


def _echo_reply_only_filter() -> bytes:
    # struct icmp6_filter: 256 bits, a set bit blocks that type.
    blocked = [0xFFFFFFFF] * 8
    blocked[ICMPV6_ECHO_REPLY >> 5] &= ~(1 << (ICMPV6_ECHO_REPLY & 31))
    return struct.pack("8I", *blocked)


@dataclass
class EchoProber:
    """Sends echo requests and collects the replies that answer them.

    One identifier per prober and a sequence number per request, so replies
    to other programs' pings (a raw socket sees them all) are ignored.
    """

    interface: str | None = None
    identifier: int = field(default_factory=lambda: int.from_bytes(os.urandom(2), "big"))
    _sequence: int = 0
    _pending: dict[int, str] = field(default_factory=dict)
    _socket: socket.socket | None = None

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _echo_reply_only_filter())
        if self.interface is not None:
            # Probes must leave through the mesh interface, never another
            # route to the same address.
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.interface.encode())
        self._socket = sock

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def send(self, address: str) -> None:
        """Sends one echo request to ``address``; a send error counts as no reply."""
        assert self._socket is not None, "open() first"
        self._sequence = (self._sequence + 1) & 0xFFFF
        # The kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets.
        packet = struct.pack("!BBHHH", ICMPV6_ECHO_REQUEST, 0, 0, self.identifier, self._sequence)
        packet += b"clan-wireguard"
        self._pending[self._sequence] = address
        try:
            self._socket.sendto(packet, (address, 0))
        except OSError:
            # No route, no key for the peer yet, interface down: all mean
            # the controller is not reachable now.
            del self._pending[self._sequence]

    def collect(self, deadline: float) -> set[str]:
        """Returns the addresses that answered before ``deadline`` (monotonic)."""
        assert self._socket is not None, "open() first"
        answered: set[str] = set()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            readable, _, _ = select.select([self._socket], [], [], remaining)
            if not readable:
                break
            answered |= self._drain()
        self._pending.clear()
        return answered

    def _drain(self) -> set[str]:
        assert self._socket is not None
        answered: set[str] = set()
        while True:
            try:
                data, source = self._socket.recvfrom(1500)
            except BlockingIOError:
                return answered
            if len(data) < 8:
                continue
            kind, _code, _checksum, identifier, sequence = struct.unpack("!BBHHH", data[:8])
            if kind != ICMPV6_ECHO_REPLY or identifier != self.identifier:
                continue
            expected = self._pending.get(sequence)
            if expected is not None and _same_address(expected, source[0]):
                answered.add(expected)


def _same_address(a: str, b: str) -> bool:
    return socket.inet_pton(socket.AF_INET6, a) == socket.inet_pton(
        socket.AF_INET6, b.split("%", 1)[0]
    )
