"""WireGuard key pairs (X25519), byte for byte as ``wg genkey`` / ``wg pubkey``.

Both tools print standard base64 of the 32 raw key bytes and a newline. Clan
stores generator output as it is, so our files carry the same newline: a
clan that switches from clan-core's ``wg``-based generator to ours sees no
difference, and every consumer of a key file must strip the newline.
"""

from __future__ import annotations

import base64
import binascii
import os

KEY_LENGTH = 32


class KeyPair:
    """Both keys as base64 text, without the newline.

    A plain class, not a dataclass: importing dataclasses would cost more
    than making the key (clan starts a process per generator). Its repr
    leaves out the private key, so a logged KeyPair never shows the secret.
    """

    __slots__ = ("private_key", "public_key")

    def __init__(self, private_key: str, public_key: str) -> None:
        self.private_key = private_key
        self.public_key = public_key

    def __repr__(self) -> str:
        return f"KeyPair(public_key={self.public_key!r})"

    def private_key_file(self) -> bytes:
        return key_file_content(self.private_key)

    def public_key_file(self) -> bytes:
        return key_file_content(self.public_key)


def key_file_content(key: str) -> bytes:
    """The bytes ``wg`` writes for ``key``: its base64 text and a newline."""
    return f"{key}\n".encode()


def clamp(raw: bytes) -> bytes:
    """Clamp a scalar as X25519 (RFC 7748) and ``wg genkey`` do.

    The result is the same key either way, but ``wg genkey`` prints the
    clamped bytes, and we want our files to be indistinguishable.
    """
    if len(raw) != KEY_LENGTH:
        raise ValueError(f"a key has {KEY_LENGTH} bytes, not {len(raw)}")
    clamped = bytearray(raw)
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    return bytes(clamped)


def decode_key(text: str) -> bytes:
    """The 32 raw bytes of a base64 key; a trailing newline is ignored.

    Raises ValueError (without echoing the text, which may be a secret).
    """
    try:
        raw = base64.b64decode(text.rstrip("\n"), validate=True)
    except binascii.Error as error:
        raise ValueError("not valid base64") from error
    if len(raw) != KEY_LENGTH:
        raise ValueError(f"decodes to {len(raw)} bytes, a WireGuard key has {KEY_LENGTH}")
    return raw


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def public_key_of(private_key: str) -> str:
    """The public key for a base64 private key, as ``wg pubkey`` prints it (no newline)."""
    # Imported here: loading the cryptography bindings costs more than the
    # whole rest of a generator run, and only this generator needs them.
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    secret = X25519PrivateKey.from_private_bytes(decode_key(private_key))
    return encode_key(secret.public_key().public_bytes_raw())


def generate_key_pair() -> KeyPair:
    # os.urandom is the kernel's random source, the one secrets.token_bytes uses.
    private_key = encode_key(clamp(os.urandom(KEY_LENGTH)))
    return KeyPair(private_key=private_key, public_key=public_key_of(private_key))
