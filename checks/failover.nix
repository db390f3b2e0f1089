# NixOS VM test: the spec's mesh on a virtual LAN, names, and a controller
# outage.
#
# Five machines (controllers ctrl1 and ctrl2; peers peer1 -> ctrl1,
# peer2 -> ctrl2, peer3 -> ctrl1) run the plain NixOS module with the
# test-only keys and public values of ./fixtures. The test checks that
#
# 1. every machine reaches every other one by name (`<machine>.vpn`);
# 2. with ctrl2's WireGuard stopped, every pair of the four others is
#    reachable by name again within 10 s (peer2's name lives in ctrl2's
#    subnet: the failover agents hand that subnet to ctrl1);
# 3. with ctrl2 back, all 20 pairs are reachable within 10 s.
{
  pkgs,
  nixosModule,
}:
let
  inherit (pkgs) lib;

  inventory = builtins.fromJSON (builtins.readFile ./fixtures/inventory.json);
  machines = [
    "ctrl1"
    "ctrl2"
    "peer1"
    "peer2"
    "peer3"
  ];

  node =
    name:
    { ... }:
    {
      imports = [ nixosModule ];

      # Test-only key, copied into /etc (mode makes it a file, not a link
      # into the store). A real deployment keeps it out of the store.
      environment.etc."clan-wireguard/vpn.key" = {
        source = ./fixtures/secrets/per-machine/${name}/wireguard-keys-vpn/privatekey/value;
        mode = "0400";
      };

      networking.clan-wireguard.instances.vpn = {
        inherit (inventory) roles;
        varsDirectory = ./fixtures;
        privateKeyFile = "/etc/clan-wireguard/vpn.key";
      };

      environment.systemPackages = [ pkgs.wireguard-tools ];
    };
in
pkgs.testers.runNixOSTest {
  name = "clan-wireguard-failover";

  nodes = lib.genAttrs machines node;

  testScript = ''
    import time

    names = ${builtins.toJSON machines}
    nodes = {machine.name: machine for machine in machines}


    def ping_all_from(source, members):
        targets = [target for target in members if target != source]
        return " && ".join(f"ping -c 1 -W 1 {target}.vpn > /dev/null" for target in targets)


    def all_pairs_reachable(members, seconds):
        """Every ordered pair of members pings by name before the deadline."""
        started = time.monotonic()
        deadline = started + seconds
        for source in members:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{seconds} s passed before {source} was checked"
            nodes[source].wait_until_succeeds(
                ping_all_from(source, members), timeout=max(1, int(remaining))
            )
        elapsed = time.monotonic() - started
        pairs = len(members) * (len(members) - 1)
        assert elapsed <= seconds, f"{pairs} pairs took {elapsed:.1f} s, more than {seconds} s"
        print(f"{pairs} pairs reachable by name after {elapsed:.1f} s")


    start_all()
    for name in names:
        nodes[name].wait_for_unit("wireguard-vpn.service")
    for name in ["peer1", "peer2", "peer3"]:
        nodes[name].wait_for_unit("clan-wireguard-failover-vpn.service")
    for name in ["ctrl1", "ctrl2"]:
        nodes[name].fail("systemctl cat clan-wireguard-failover-vpn.service")

    with subtest("every machine reaches every other by name"):
        # The first handshakes may wait for WireGuard's 5 s retry.
        all_pairs_reachable(names, 60)
        peer1.succeed("getent hosts peer2.vpn | grep -q '^fd'")

    with subtest("a controller outage: the others stay reachable"):
        ctrl2.succeed("systemctl stop wireguard-vpn.service")
        ctrl2.fail("ip link show vpn")
        all_pairs_reachable([name for name in names if name != "ctrl2"], 10)
        peer2.succeed("clan-wireguard failover status | grep ctrl2 | grep -q down")

    with subtest("the controller returns: all pairs reachable again"):
        ctrl2.succeed("systemctl start wireguard-vpn.target")
        ctrl2.wait_for_unit("wireguard-vpn.service")
        all_pairs_reachable(names, 10)
  '';
}
