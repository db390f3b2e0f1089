"""Addresses of an instance: its /40, controllers' /56 prefixes, peers' suffixes.

The rules, and why they are what they are, are in ``docs/addressing.md``. In
short: the /40 comes from the instance name exactly as clan-core's allocator
derives it (so existing clans keep their addresses); a controller's /56 id
and a peer's 64-bit suffix are random, avoiding the values passed as taken.

Everything written is canonical: hextets in lower case without leading zeros,
always four of them, never ``::``. Parsing accepts any valid text: leading
zeros, upper case, ``::``, the shorter prefixes clan-core stores when a /56
ends in zero hextets, and the leading colon the spec writes before a suffix.
The planner (Nix) accepts the same texts and writes the same canonical form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

# The value types below are written out rather than made dataclasses, and
# randomness comes from os.urandom rather than the secrets module: clan
# starts a process per generator, and importing dataclasses or secrets takes
# longer than the generator's own work.

ULA_BYTE = 0xFD
SUBNET_ID_BITS = 16
SUBNET_ID_COUNT = 1 << SUBNET_ID_BITS
SUFFIX_BITS = 64
# Controllers route a /96 to each peer: the controller's /56 followed by the
# first 32 bits of the peer's suffix. Those bits are what tells peers apart.
PEER_ID_BITS = 32
PEER_ID_COUNT = 1 << PEER_ID_BITS

_HEXTET = re.compile(r"[0-9a-fA-F]{1,4}")


class AddressSpaceFull(Exception):
    """Every value is taken; nothing is left to allocate."""


def _hextets(value: int, count: int) -> list[int]:
    return [(value >> (16 * (count - 1 - index))) & 0xFFFF for index in range(count)]


def _canonical(value: int, count: int) -> str:
    return ":".join(f"{hextet:x}" for hextet in _hextets(value, count))


def _parse_plain(text: str) -> list[int]:
    parts = text.split(":")
    for part in parts:
        if _HEXTET.fullmatch(part) is None:
            raise ValueError(f"{part!r} is not a hextet (1 to 4 hexadecimal digits)")
    return [int(part, 16) for part in parts]


def _parse_group(text: str, count: int, pad_end: bool) -> int:
    """The value of ``count`` hextets written as text, ``::`` allowed once.

    With ``pad_end``, fewer hextets without ``::`` stand for trailing zeros
    (clan-core's allocator drops the zero hextets at the end of a prefix).
    """
    if text.count("::") > 1:
        raise ValueError("'::' may appear only once")
    if "::" in text:
        left_text, right_text = text.split("::")
        left = _parse_plain(left_text) if left_text else []
        right = _parse_plain(right_text) if right_text else []
        if len(left) + len(right) >= count:
            raise ValueError(f"has more than {count} hextets")
        hextets = left + [0] * (count - len(left) - len(right)) + right
    else:
        hextets = _parse_plain(text)
        if len(hextets) > count or (len(hextets) < count and not pad_end):
            expected = f"at most {count}" if pad_end else f"exactly {count}"
            raise ValueError(f"has {len(hextets)} hextets, {expected} expected")
        hextets += [0] * (count - len(hextets))
    value = 0
    for hextet in hextets:
        value = (value << 16) | hextet
    return value


def random_below(limit: int) -> int:
    """A uniformly random integer in [0, limit), from the kernel's random source."""
    if limit < 1:
        raise ValueError(f"no integer is in [0, {limit})")
    bits = (limit - 1).bit_length()
    while True:
        # Drawing exactly `bits` bits and retrying when too large keeps every
        # value equally likely.
        candidate = int.from_bytes(os.urandom((bits + 7) // 8), "big") >> (-bits % 8)
        if candidate < limit:
            return candidate


class _Bits:
    """An immutable number of fixed width, compared and hashed by its value."""

    __slots__ = ("value",)
    value: int

    def __init__(self, value: int) -> None:
        object.__setattr__(self, "value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} cannot be changed")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bits) and type(other) is type(self) and other.value == self.value

    def __hash__(self) -> int:
        return hash((type(self), self.value))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, _Bits) or type(other) is not type(self):
            return NotImplemented
        return self.value < other.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class InstanceNetwork(_Bits):
    """An instance's /40: ``fd``, then 24 bits of sha256(name), then a zero byte.

    This is clan-core's derivation (it masks 32 hash bits with 0xFFFFFF00 and
    keeps the first 40 bits of the result), kept for compatibility. It depends
    on the name alone: every clan with an instance of the same name shares it.
    ``value`` holds the 40 network bits, the top 8 being 0xfd.
    """

    __slots__ = ("instance",)
    instance: str

    def __init__(self, instance: str, value: int) -> None:
        super().__init__(value)
        object.__setattr__(self, "instance", instance)

    @classmethod
    def for_instance(cls, instance: str) -> InstanceNetwork:
        import hashlib

        digest = hashlib.sha256(instance.encode()).digest()
        return cls(instance, (ULA_BYTE << 32) | (int.from_bytes(digest[:3], "big") << 8))

    def prefix(self, subnet_id: int) -> ControllerPrefix:
        if not 0 <= subnet_id < SUBNET_ID_COUNT:
            raise ValueError(f"subnet id {subnet_id} is outside 0..{SUBNET_ID_COUNT - 1}")
        return ControllerPrefix((self.value << SUBNET_ID_BITS) | subnet_id)

    def contains(self, prefix: ControllerPrefix) -> bool:
        return prefix.value >> SUBNET_ID_BITS == self.value

    def __str__(self) -> str:
        # Only messages need this text; the generators never import ipaddress.
        import ipaddress

        return str(ipaddress.IPv6Network((self.value << 88, 40)))


class ControllerPrefix(_Bits):
    """A controller's /56: its instance's /40 and a 16-bit subnet id (``value``: 56 bits)."""

    __slots__ = ()

    @property
    def subnet_id(self) -> int:
        return self.value & (SUBNET_ID_COUNT - 1)

    def __str__(self) -> str:
        # Four hextets: the 56 bits and a zero byte, e.g. fd51:19c1:3b:f700.
        return _canonical(self.value << 8, 4)


class PeerSuffix(_Bits):
    """A peer's 64-bit host part, appended to every controller's prefix."""

    __slots__ = ()

    @property
    def peer_id(self) -> int:
        """The first 32 bits: what separates this peer's /96 from other peers'."""
        return self.value >> (SUFFIX_BITS - PEER_ID_BITS)

    def __str__(self) -> str:
        return _canonical(self.value, 4)


def parse_prefix(text: str) -> ControllerPrefix:
    """Parse a controller prefix: up to four hextets, missing ones at the end are zero.

    Raises ValueError, with the reason, for anything else.
    """
    value = _parse_group(text, 4, pad_end=True)
    if value & 0xFF:
        raise ValueError(f"it ends in {value & 0xFFFF:x}, not 00, so it is not a /56 prefix")
    return ControllerPrefix(value >> 8)


def parse_suffix(text: str) -> PeerSuffix:
    """Parse a peer suffix: four hextets (the spec's leading colon is allowed).

    Raises ValueError otherwise.
    """
    if text.startswith(":") and not text.startswith("::"):
        text = text[1:]
    return PeerSuffix(_parse_group(text, 4, pad_end=False))


def allocate_controller_prefix(
    network: InstanceNetwork, taken: Iterable[ControllerPrefix]
) -> ControllerPrefix:
    """A random /56 of ``network`` whose subnet id no prefix in ``taken`` has.

    Random rather than hashed from the machine name, so that regenerating a
    controller whose prefix collides gives it a new one.
    """
    taken_ids = {prefix.subnet_id for prefix in taken if network.contains(prefix)}
    free_count = SUBNET_ID_COUNT - len(taken_ids)
    if free_count == 0:
        raise AddressSpaceFull(f"all {SUBNET_ID_COUNT} /56 prefixes of {network} are taken")
    if free_count < SUBNET_ID_COUNT // 2:
        # Drawing until a free id comes up would take long when few are free.
        free_ids = sorted(set(range(SUBNET_ID_COUNT)) - taken_ids)
        return network.prefix(free_ids[random_below(len(free_ids))])
    while True:
        subnet_id = random_below(SUBNET_ID_COUNT)
        if subnet_id not in taken_ids:
            return network.prefix(subnet_id)


def allocate_peer_suffix(taken: Iterable[PeerSuffix]) -> PeerSuffix:
    """A random suffix whose first 32 bits are not zero and not those of ``taken``.

    Zero is excluded because that /96 would hold each controller's own
    ``<prefix>::1``.
    """
    taken_ids = {suffix.peer_id for suffix in taken}
    taken_ids.discard(0)
    if len(taken_ids) >= PEER_ID_COUNT - 1:
        raise AddressSpaceFull(f"all {PEER_ID_COUNT - 1} peer /96 ranges are taken")
    # A mesh holds a tiny share of the 2^32 ids, so the first draw nearly
    # always succeeds.
    while True:
        peer_id = random_below(PEER_ID_COUNT - 1) + 1
        if peer_id not in taken_ids:
            host_bits = random_below(1 << (SUFFIX_BITS - PEER_ID_BITS))
            return PeerSuffix((peer_id << (SUFFIX_BITS - PEER_ID_BITS)) | host_bits)
