"""WireGuard keys: checked against the real ``wg`` tool."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from clan_wireguard.keys import KeyPair, decode_key, generate_key_pair, public_key_of
from command_line import run_clan_wireguard


def wg(*arguments: str, stdin: str = "") -> str:
    wg_binary = shutil.which("wg")
    if wg_binary is None:
        pytest.fail("wg (wireguard-tools) is not installed; these tests need it")
    result = subprocess.run(
        [wg_binary, *arguments], input=stdin, capture_output=True, text=True, check=True
    )
    return result.stdout


def is_clamped(raw: bytes) -> bool:
    return raw[0] & 0b111 == 0 and raw[31] & 0b1000_0000 == 0 and raw[31] & 0b0100_0000 != 0


def test_wg_derives_our_public_key_from_our_private_key() -> None:
    for _ in range(20):
        pair = generate_key_pair()
        assert wg("pubkey", stdin=pair.private_key + "\n") == pair.public_key + "\n"


def test_our_private_keys_are_clamped_like_wg_genkey() -> None:
    for _ in range(50):
        assert is_clamped(decode_key(generate_key_pair().private_key))
    # The same property holds for wg's own keys: that is what we imitate.
    assert is_clamped(decode_key(wg("genkey")))


def test_we_derive_the_same_public_key_as_wg_from_wg_genkey() -> None:
    for _ in range(20):
        private_key = wg("genkey")
        assert public_key_of(private_key) + "\n" == wg("pubkey", stdin=private_key)


def test_key_files_are_what_wg_would_write(tmp_path: Path) -> None:
    result = run_clan_wireguard("generate", "keys", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    # The private key is never shown.
    assert result.stdout == ""
    assert result.stderr == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["privatekey", "publickey"]
    private_key = (tmp_path / "privatekey").read_text()
    public_key = (tmp_path / "publickey").read_text()
    for text in (private_key, public_key):
        # base64 of 32 bytes (44 characters) and wg's newline.
        assert len(text) == 45
        assert text.endswith("\n")
        assert len(base64.b64decode(text.removesuffix("\n"), validate=True)) == 32
    assert wg("pubkey", stdin=private_key) == public_key
    assert is_clamped(decode_key(private_key))
    assert stat.S_IMODE((tmp_path / "privatekey").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "publickey").stat().st_mode) == 0o644


def test_private_key_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    result = run_clan_wireguard("generate", "keys", "--out", tmp_path, umask=0)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "privatekey").stat().st_mode) == 0o600


def test_every_run_makes_a_new_key(tmp_path: Path) -> None:
    seen = set()
    for index in range(3):
        out = tmp_path / str(index)
        out.mkdir()
        assert run_clan_wireguard("generate", "keys", "--out", out).returncode == 0
        seen.add((out / "privatekey").read_text())
    assert len(seen) == 3


def test_a_key_pair_does_not_show_its_private_key() -> None:
    pair = generate_key_pair()
    assert pair.private_key not in repr(pair)
    assert pair.private_key not in str(pair)
    assert pair.public_key in repr(pair)
    assert isinstance(pair, KeyPair)


@pytest.mark.parametrize(
    "text",
    ["", "not base64!", base64.b64encode(b"x" * 31).decode(), base64.b64encode(b"x" * 33).decode()],
)
def test_bad_key_text_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        decode_key(text)
    if text:
        assert text not in str(caught.value)
