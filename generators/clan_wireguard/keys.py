"""WireGuard key pairs (X25519), byte for byte as ``wg genkey`` / ``wg pubkey``.

Both tools print standard base64 of the 32 raw key bytes and a newline. Clan
stores generator output as it is, so our files carry the same newline: a
clan that switches from clan-core's ``wg``-based generator to ours sees no
difference, and every consumer of a key file must strip the newline.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field

KEY_LENGTH = 32


@dataclass(frozen=True)
class KeyPair:
    # Base64 text without the newline; kept out of repr so that a logged or
    # printed KeyPair never shows the secret.
    private_key: str = field(repr=False)
    public_key: str

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
    private_key = encode_key(clamp(secrets.token_bytes(KEY_LENGTH)))
    return KeyPair(private_key=private_key, public_key=public_key_of(private_key))
