"""Addressing: the instance /40, controller prefixes, peer suffixes, their text forms."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clan_wireguard import addressing
from clan_wireguard.addressing import (
    AddressSpaceFull,
    ControllerPrefix,
    InstanceNetwork,
    PeerSuffix,
    allocate_controller_prefix,
    allocate_peer_suffix,
    parse_prefix,
    parse_suffix,
    random_below,
)
from clan_wireguard.plan import nix_dir
from hypothesis import given, settings
from hypothesis import strategies as st

CANONICAL_HEXTET = "(0|[1-9a-f][0-9a-f]{0,3})"
CANONICAL_FOUR_HEXTETS = re.compile(rf"{CANONICAL_HEXTET}(:{CANONICAL_HEXTET}){{3}}")

dns_labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?\Z")
subnet_ids = st.integers(0, addressing.SUBNET_ID_COUNT - 1)
suffix_values = st.integers(0, (1 << 64) - 1)


def network_by_hand(name: str) -> ipaddress.IPv6Network:
    """The documented rule, spelled out with hashlib and text: fd, 6 hash digits, a zero byte."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return ipaddress.IPv6Network(f"fd{digest[0:2]}:{digest[2:6]}:00::/40")


def network_of(prefix: ControllerPrefix) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(f"{prefix}::/56").supernet(new_prefix=40)


@pytest.mark.parametrize("name", ["vpn", "wireguard", "a", "office-net", "n48202", "0"])
def test_instance_network_is_fd_then_24_hash_bits_then_zero(name: str) -> None:
    network = InstanceNetwork.for_instance(name)
    expected = network_by_hand(name)
    assert str(network) == str(expected)
    assert network.value == int(expected.network_address) >> 88
    # The fifth byte is always zero.
    assert expected.network_address.packed[4] == 0


def test_every_instance_named_wireguard_shares_one_network() -> None:
    # No clan-specific input goes into the /40: two unrelated clans with an
    # instance called "wireguard" get the same one. The docs warn about it.
    assert str(InstanceNetwork.for_instance("wireguard")) == str(network_by_hand("wireguard"))
    assert InstanceNetwork.for_instance("wireguard") == InstanceNetwork.for_instance("wireguard")


@settings(max_examples=300)
@given(instance=dns_labels, subnet_id=subnet_ids)
def test_prefix_text_is_canonical_and_parses_back(instance: str, subnet_id: int) -> None:
    network = InstanceNetwork.for_instance(instance)
    prefix = network.prefix(subnet_id)
    text = str(prefix)
    assert CANONICAL_FOUR_HEXTETS.fullmatch(text), text
    assert "::" not in text
    assert parse_prefix(text) == prefix
    assert network.contains(prefix)
    assert prefix.subnet_id == subnet_id
    # Cross-checked with the standard library: the text is a /56 inside the /40.
    subnet = ipaddress.IPv6Network(f"{text}::/56")
    assert network_of(prefix) == network_by_hand(instance)
    assert (int(subnet.network_address) >> 72) & 0xFFFF == subnet_id


@settings(max_examples=300)
@given(value=suffix_values)
def test_suffix_text_is_canonical_and_parses_back(value: int) -> None:
    suffix = PeerSuffix(value)
    text = str(suffix)
    assert CANONICAL_FOUR_HEXTETS.fullmatch(text), text
    assert parse_suffix(text) == suffix
    exploded = ipaddress.IPv6Address(value).exploded.split(":")[4:]
    assert text.split(":") == [hextet.lstrip("0") or "0" for hextet in exploded]


def spell(hextets: list[int], data: st.DataObject) -> list[str]:
    """Hextets written with random leading zeros and random case."""
    spelled = []
    for hextet in hextets:
        digits = f"{hextet:x}"
        width = data.draw(st.integers(len(digits), 4))
        text = digits.rjust(width, "0")
        if data.draw(st.booleans()):
            text = text.upper()
        spelled.append(text)
    return spelled


def compress_zero_run(spelled: list[str], hextets: list[int], data: st.DataObject) -> str:
    """Join with ':', replacing one run of zero hextets by '::' when drawn."""
    runs = [
        (start, end)
        for start in range(len(hextets))
        for end in range(start + 1, len(hextets) + 1)
        if all(hextet == 0 for hextet in hextets[start:end])
    ]
    compress: bool = data.draw(st.booleans())
    if not runs or not compress:
        return ":".join(spelled)
    start, end = data.draw(st.sampled_from(runs))
    return ":".join(spelled[:start]) + "::" + ":".join(spelled[end:])


@settings(max_examples=400)
@given(instance=dns_labels, subnet_id=subnet_ids, data=st.data())
def test_prefix_parses_from_any_valid_text(
    instance: str, subnet_id: int, data: st.DataObject
) -> None:
    prefix = InstanceNetwork.for_instance(instance).prefix(subnet_id)
    hextets = [int(part, 16) for part in str(prefix).split(":")]
    spelled = spell(hextets, data)
    # clan-core stores a prefix without its trailing zero hextets.
    while len(spelled) > 1 and hextets[len(spelled) - 1] == 0 and data.draw(st.booleans()):
        spelled.pop()
    text = compress_zero_run(spelled, hextets[: len(spelled)], data)
    assert parse_prefix(text) == prefix, text


@settings(max_examples=400)
@given(value=suffix_values, data=st.data())
def test_suffix_parses_from_any_valid_text(value: int, data: st.DataObject) -> None:
    hextets = [(value >> shift) & 0xFFFF for shift in (48, 32, 16, 0)]
    text = compress_zero_run(spell(hextets, data), hextets, data)
    if data.draw(st.booleans()) and not text.startswith("::"):
        text = ":" + text
    assert parse_suffix(text) == PeerSuffix(value), text


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "fd51:19c1:3b:f701",  # not on a /56 boundary
        "fd51:19c1:3b:f700:0",  # five hextets
        "fd51:19c1:3b:f700::",  # "::" with no zero hextet left to stand for
        "fd51:19c1:3bf70",  # five digits
        "fd51:19g1",
        "fd51:::1",
        "fd51::3b::",
        " fd51:19c1",
        "fd51:19c1/56",
    ],
)
def test_bad_prefix_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_prefix(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "8750:a09b:0",
        "8750:a09b:0:1:2",
        "8750:a09b:0:1::",
        "::8750:a09b:0:1",
        "x:0:0:1",
        "1::2::3",
    ],
)
def test_bad_suffix_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_suffix(text)


@settings(max_examples=200)
@given(instance=dns_labels, taken_ids=st.sets(subnet_ids, max_size=300))
def test_controller_prefix_avoids_taken(instance: str, taken_ids: set[int]) -> None:
    network = InstanceNetwork.for_instance(instance)
    prefix = allocate_controller_prefix(network, [network.prefix(i) for i in taken_ids])
    assert network.contains(prefix)
    assert prefix.subnet_id not in taken_ids
    assert CANONICAL_FOUR_HEXTETS.fullmatch(str(prefix))


def test_controller_prefix_takes_the_last_free_id_and_then_fails() -> None:
    network = InstanceNetwork.for_instance("vpn")
    everything = [network.prefix(i) for i in range(addressing.SUBNET_ID_COUNT)]
    last_free = everything.pop(12345)
    assert allocate_controller_prefix(network, everything) == last_free
    with pytest.raises(AddressSpaceFull):
        allocate_controller_prefix(network, [*everything, last_free])


def test_controller_prefix_is_random_not_derived_from_names() -> None:
    # Regenerating a colliding controller must give it a new prefix.
    network = InstanceNetwork.for_instance("vpn")
    prefixes = {allocate_controller_prefix(network, []) for _ in range(8)}
    assert len(prefixes) > 1


@settings(max_examples=200)
@given(taken=st.lists(suffix_values.map(PeerSuffix), max_size=300))
def test_peer_suffix_avoids_taken_and_zero(taken: list[PeerSuffix]) -> None:
    suffix = allocate_peer_suffix(taken)
    assert suffix.peer_id != 0
    assert suffix.peer_id not in {other.peer_id for other in taken}
    text = str(suffix)
    assert CANONICAL_FOUR_HEXTETS.fullmatch(text)
    assert not text.startswith("0:0:")


def test_peer_suffixes_differ_between_draws() -> None:
    assert len({allocate_peer_suffix([]) for _ in range(8)}) == 8


def test_random_below_stays_in_range_and_reaches_every_value() -> None:
    for limit in (1, 2, 3, 5, 256, 257, 65536):
        draws = [random_below(limit) for _ in range(max(limit * 40, 200))]
        assert all(0 <= draw < limit for draw in draws)
        if limit <= 257:
            # Missing a value after 40 draws per value has odds of about e^-40.
            assert set(draws) == set(range(limit))
    with pytest.raises(ValueError):
        random_below(0)


def test_address_values_compare_by_kind_and_value() -> None:
    assert ControllerPrefix(5) == ControllerPrefix(5)
    assert hash(ControllerPrefix(5)) == hash(ControllerPrefix(5))
    assert ControllerPrefix(5) != PeerSuffix(5)
    assert sorted([PeerSuffix(9), PeerSuffix(2)]) == [PeerSuffix(2), PeerSuffix(9)]
    assert len({PeerSuffix(1), PeerSuffix(1), ControllerPrefix(1)}) == 2
    prefix = ControllerPrefix(5)
    with pytest.raises(AttributeError):
        prefix.value = 6
    assert (
        repr(InstanceNetwork.for_instance("vpn").prefix(1)) == "ControllerPrefix('fdeb:f20c:0:100')"
    )


CLAN_CORE_DRIVER = textwrap.dedent(
    """
    import importlib.util, json, pathlib, sys, tempfile
    script, names = sys.argv[1], json.loads(sys.argv[2])
    spec = importlib.util.spec_from_file_location("ipv6_allocator", script)
    allocator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(allocator)
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for name in names:
            written = {}
            for kind in ("controller", "peer"):
                sys.argv = [script, out, name, kind, name]
                allocator.main()
                file = "prefix" if kind == "controller" else "suffix"
                written[file] = (pathlib.Path(out) / file).read_text()
            base = allocator.generate_ula_prefix(name)
            subnet = allocator.generate_controller_subnet(base, name)
            results[name] = {"network": str(base), "subnet": str(subnet), **written}
    print(json.dumps(results))
    """
)


def names_whose_clan_core_prefix_is_short() -> list[str]:
    """Controller names for which clan-core stores two or three hextets."""
    found: dict[int, str] = {}
    index = 0
    while len(found) < 2:
        name = f"ctrl{index}"
        controller_id = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16)
        if controller_id == 0 and 0 not in found:
            found[0] = name
        elif controller_id & 0xFF == 0 and controller_id != 0 and 1 not in found:
            found[1] = name
        index += 1
    return sorted(found.values())


def clan_core_allocator() -> Path:
    checkout = os.environ.get("CLAN_CORE_PATH")
    if not checkout:
        pytest.skip("set CLAN_CORE_PATH to a clan-core checkout to compare with its allocator")
    script = Path(checkout) / "clanServices" / "wireguard" / "ipv6_allocator.py"
    if not script.is_file():
        pytest.fail(f"CLAN_CORE_PATH is set but {script} does not exist")
    return script


def test_same_network_and_readable_values_as_clan_core() -> None:
    script = clan_core_allocator()
    names = [f"net{index}" for index in range(400)]
    names += [
        "vpn",
        "wireguard",
        "a",
        "office-net",
        "n48202",
        *names_whose_clan_core_prefix_is_short(),
    ]
    result = subprocess.run(
        [sys.executable, "-c", CLAN_CORE_DRIVER, str(script), json.dumps(names)],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(result.stdout)
    short_prefixes = 0
    for name in names:
        network = InstanceNetwork.for_instance(name)
        assert str(network) == theirs[name]["network"], name
        # Their stored prefix, malformed or not, reads as their /56.
        prefix = parse_prefix(theirs[name]["prefix"])
        assert ipaddress.IPv6Network(f"{prefix}::/56") == ipaddress.IPv6Network(
            theirs[name]["subnet"]
        )
        assert network.contains(prefix)
        short_prefixes += theirs[name]["prefix"].count(":") < 3
        suffix = parse_suffix(theirs[name]["suffix"])
        assert suffix.value == int(theirs[name]["suffix"].replace(":", ""), 16)
    assert short_prefixes >= 2


def test_clan_core_script_run_as_clan_runs_it(tmp_path: Path) -> None:
    script = clan_core_allocator()
    for name in names_whose_clan_core_prefix_is_short():
        subprocess.run(
            [sys.executable, str(script), str(tmp_path), "vpn", "controller", name],
            check=True,
        )
        stored = (tmp_path / "prefix").read_text()
        assert stored.count(":") < 3, stored  # the malformed form we must read
        prefix = parse_prefix(stored)
        assert InstanceNetwork.for_instance("vpn").contains(prefix)
        assert CANONICAL_FOUR_HEXTETS.fullmatch(str(prefix))


PLANNER_PARSE = """
let
  inherit (builtins.fromJSON (builtins.readFile ./arguments.json))
    file
    instances
    prefixes
    suffixes
    ;
  addresses = import file;
in
{
  networks = map (name: (addresses.network name).text) instances;
  prefixes = map (
    case:
    let
      parsed = addresses.parsePrefix (addresses.network case.instance) case.text;
    in
    if parsed.error == null then parsed.text else null
  ) prefixes;
  suffixes = map (
    text:
    let
      parsed = addresses.parseSuffix text;
    in
    if parsed.error == null then parsed.text else null
  ) suffixes;
}
"""


def ours_prefix(instance: str, text: str) -> str | None:
    try:
        prefix = parse_prefix(text)
    except ValueError:
        return None
    return str(prefix) if InstanceNetwork.for_instance(instance).contains(prefix) else None


def ours_suffix(text: str) -> str | None:
    try:
        suffix = parse_suffix(text)
    except ValueError:
        return None
    # The planner also refuses a suffix whose /96 would hold controllers' ::1.
    return str(suffix) if suffix.peer_id != 0 else None


@pytest.mark.nix
def test_planner_reads_and_writes_the_same_texts(tmp_path: Path) -> None:
    addresses_nix = nix_dir() / "planner" / "addresses.nix"
    if not addresses_nix.is_file():
        pytest.skip(f"the planner's {addresses_nix.name} is not in this checkout")
    nix_instantiate = shutil.which("nix-instantiate")
    if nix_instantiate is None:
        pytest.fail("nix-instantiate not found; the nix tests need it")
    instances = ["vpn", "wireguard", "n48202", "office-net"]
    network = InstanceNetwork.for_instance("vpn")
    prefix_texts = []
    for subnet_id in (0, 1, 0x3B00, 0x3BF7, 0xFFFF, 0x00F7):
        canonical = str(network.prefix(subnet_id))
        prefix_texts += [
            canonical,
            canonical.upper(),
            ":".join(h.zfill(4) for h in canonical.split(":")),
        ]
    prefix_texts += [
        "fdeb:f20c",
        "fdeb:f20c:3b",
        "fdeb:f20c::",
        "fdeb:f20c::f700",
        "fdeb:f20c:3b:f701",
    ]
    prefix_texts += ["fd51:19c1:3b:f700", "fdeb:f20c:13b:0", "", "fdeb:f20c:3b:f700:0", "x"]
    suffix_texts = ["8750:a09b:0:1", ":8750:a09b:0:1", "8750:A09B:0000:0001", "8750::1", "1::"]
    suffix_texts += [
        "0:0:1:1",
        "::1",
        "8750:a09b:0",
        "8750:a09b:0:1:2",
        "1::2::3",
        "ffff:ffff:ffff:ffff",
    ]
    prefix_cases = [{"instance": "vpn", "text": text} for text in prefix_texts]
    expression = tmp_path / "parse.nix"
    expression.write_text(PLANNER_PARSE)
    arguments = {
        "file": str(addresses_nix.resolve()),
        "instances": instances,
        "prefixes": prefix_cases,
        "suffixes": suffix_texts,
    }
    (tmp_path / "arguments.json").write_text(json.dumps(arguments))
    result = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", str(expression)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    planner = json.loads(result.stdout)
    assert planner["networks"] == [str(InstanceNetwork.for_instance(name)) for name in instances]
    assert planner["prefixes"] == [ours_prefix("vpn", text) for text in prefix_texts]
    assert planner["suffixes"] == [ours_suffix(text) for text in suffix_texts]
