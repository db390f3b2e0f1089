"""Round-trip time, TCP throughput and memory of the mesh in the lab.

For the spec's size (2 controllers, 3 peers) and a large fleet (2
controllers, 100 peers) this starts a lab (staged bring-up, no failover
agents, so only WireGuard is measured) and reports, by host name inside the
machines' namespaces:

- RTT (ping, 50 echoes) and TCP throughput (iperf3, one stream) from peer001
  to its designated controller (direct), to a peer of the same controller
  (relayed through it), and over the bare underlay (veth and bridge, no
  WireGuard) for scale; then relayed/direct;
- resident memory of every idle wireguard-go (controllers and peers apart),
  and again for the processes on the measured paths after the traffic.

    python3 bench/lab_traffic.py [--peers 3 100] [--controllers 2] [--seconds 5]

Needs root and iperf3. All of the mesh shares this machine's cores, so the
figures are those of wireguard-go in user space on this machine, not of a
network. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from clan_wireguard.lab import Lab
from clan_wireguard.lab.processes import ProcessKind
from lab_fleet import fleet_inventory, rss_mib


def rtt_ms(lab: Lab, source: str, target: str) -> float:
    output = lab.exec(source, ["ping", "-n", "-q", "-c", "50", "-i", "0.02", target]).stdout
    # rtt min/avg/max/mdev = 0.301/0.412/0.833/0.088 ms
    summary = output.strip().splitlines()[-1]
    return float(summary.split("=")[1].split("/")[1])


def throughput_mbit(lab: Lab, source: str, server: str, target: str, seconds: int) -> float:
    process = lab.spawn(server, ["iperf3", "--server", "--one-off"], f"iperf3-{server}")
    try:
        deadline = time.monotonic() + 10
        while True:
            listening = lab.exec(server, ["ss", "-H", "-ltn", "sport", "= :5201"]).stdout
            if listening.strip() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        output = lab.exec(
            source, ["iperf3", "--client", target, "--time", str(seconds), "--json"]
        ).stdout
    finally:
        lab.stop_process(process)
    result = json.loads(output)
    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6


def wireguard_rss(lab: Lab, machines: list[str] | None = None) -> dict[str, list[float]]:
    by_role: dict[str, list[float]] = {"controller": [], "peer": []}
    for record in lab.table.find(kind=ProcessKind.WIREGUARD):
        if machines is not None and record.machine not in machines:
            continue
        role = lab.plan(record.machine, record.label).role
        by_role[role].append(rss_mib(record.pid))
    return by_role


def describe(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        f"mean {statistics.mean(values):5.1f}  min {min(values):5.1f}  max {max(values):5.1f} MiB"
        f"  ({len(values)} processes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[3, 100])
    parser.add_argument("--controllers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5, help="iperf3 duration per path")
    arguments = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load} (the machine may be shared)")

    with tempfile.TemporaryDirectory(prefix="lab-traffic-") as scratch:
        for peers in arguments.peers:
            inventory = fleet_inventory(Path(scratch), arguments.controllers, peers)
            with Lab("bench-traffic", [inventory], Path(scratch) / "vars", failover=False) as lab:
                started = time.monotonic()
                report = lab.check(sample=200)
                print(
                    f"== {arguments.controllers} controllers, {peers} peers: "
                    f"{report.summary()} (sample, {time.monotonic() - started:.1f} s); "
                    f"up took {lab.timings['configured'] - lab.timings['start']:.1f} s"
                )
                time.sleep(2)
                print(
                    f"idle wireguard-go, controllers: {describe(wireguard_rss(lab)['controller'])}"
                )
                print(f"idle wireguard-go, peers:       {describe(wireguard_rss(lab)['peer'])}")

                source, controller = "peer001", "controller1"
                # Same designated controller as peer001: traffic goes through it.
                relay_target = f"peer{1 + arguments.controllers:03d}"
                domain = lab.plan(source, "vpn").domain
                underlay = lab.machine(controller).port.ipv4
                paths = {
                    "underlay": (controller, underlay),
                    "direct": (controller, f"{controller}.{domain}"),
                    "relayed": (relay_target, f"{relay_target}.{domain}"),
                }
                figures: dict[str, tuple[float, float]] = {}
                for name, (server, target) in paths.items():
                    figures[name] = (
                        rtt_ms(lab, source, target),
                        throughput_mbit(lab, source, server, target, arguments.seconds),
                    )
                    print(
                        f"{name:<9} {source} -> {target:<28} rtt {figures[name][0]:6.3f} ms   "
                        f"tcp {figures[name][1]:7.0f} Mbit/s",
                        flush=True,
                    )
                direct, relayed = figures["direct"], figures["relayed"]
                print(
                    f"relayed/direct: throughput {relayed[1] / direct[1]:.2f}, "
                    f"rtt {relayed[0] / direct[0]:.2f}"
                )
                on_paths = [source, controller, relay_target]
                loaded = wireguard_rss(lab, on_paths)
                print(
                    "after traffic, wireguard-go on the paths: "
                    f"{describe(loaded['controller'] + loaded['peer'])}"
                )
                print()


if __name__ == "__main__":
    main()
