"""Odds that two machines of one instance get the same address range.

Prints the tables of ``docs/addressing.md``: for controllers' /56 ids
(16 bits) and peers' /96 ids (the first 32 bits of a suffix, zero excluded),
the probability of at least one collision among n machines whose ids are
drawn independently and uniformly (the birthday bound, computed exactly):

    P(n, N) = 1 - prod_{k=0}^{n-1} (1 - k / N)

and the same for m machines generated together in one run while k others
already exist and are avoided (``--taken``): the m draws come from the
N - k free ids, so P = P(m, N - k).

    python3 bench/collision_odds.py
"""

from __future__ import annotations

CONTROLLER_IDS = 1 << 16
PEER_IDS = (1 << 32) - 1
MACHINE_COUNTS = (10, 50, 100, 1000, 10000)


def collision_probability(drawn: int, space: int) -> float:
    """Probability that ``drawn`` uniform picks from ``space`` values are not all distinct."""
    if drawn > space:
        return 1.0
    all_distinct = 1.0
    for already in range(drawn):
        all_distinct *= 1 - already / space
    return 1 - all_distinct


def first_count_reaching(probability: float, space: int) -> int:
    """The smallest number of random picks whose collision probability reaches ``probability``."""
    all_distinct = 1.0
    drawn = 0
    while 1 - all_distinct < probability:
        all_distinct *= 1 - drawn / space
        drawn += 1
    return drawn


def percent(probability: float) -> str:
    if probability == 0:
        return "0"
    if probability >= 0.99995:
        return "> 99.99 %"
    if probability >= 0.0001:
        return f"{probability * 100:.2f} %"
    return f"{probability * 100:.1e} %"


def main() -> None:
    print("| machines | controllers' /56, drawn at random | peers' /96, drawn at random |")
    print("| ---: | ---: | ---: |")
    for count in MACHINE_COUNTS:
        controllers = percent(collision_probability(count, CONTROLLER_IDS))
        peers = percent(collision_probability(count, PEER_IDS))
        print(f"| {count:,} | {controllers} | {peers} |")
    print()
    print("Machines generated together in one run, the others avoided:")
    print("| existing | new in one run | controllers' /56 | peers' /96 |")
    print("| ---: | ---: | ---: | ---: |")
    for existing, new in ((0, 2), (90, 10), (990, 10), (1000, 100), (9990, 10)):
        controllers = percent(collision_probability(new, CONTROLLER_IDS - existing))
        peers = percent(collision_probability(new, PEER_IDS - existing))
        print(f"| {existing:,} | {new:,} | {controllers} | {peers} |")
    half = first_count_reaching(0.5, CONTROLLER_IDS)
    one_percent = first_count_reaching(0.01, PEER_IDS)
    print()
    print(
        f"controllers: 50 % odds from {half} at once; peers: 1 % odds from {one_percent:,} at once"
    )


if __name__ == "__main__":
    main()
