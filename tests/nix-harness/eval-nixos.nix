# Evaluates the clan-wireguard NixOS module for one machine, with nixpkgs'
# lib but without nixpkgs, and returns what the tests look at.
#
#   nix-instantiate --eval --strict --json --read-write-mode eval-nixos.nix \
#     --argstr libPath <dir with nixpkgs' lib/> --argstr configFile machine.json
#
# `configFile` is JSON: the machine's NixOS configuration (for example
# `networking.clan-wireguard.instances`), as a module.
{
  libPath,
  configFile,
  extraModules ? [ ],
}:
let
  lib = import "${libPath}/lib";
  machineConfig = builtins.fromJSON (builtins.readFile configFile);
  evaluated = lib.evalModules {
    modules = [
      ./nixos-options.nix
      { _module.args.pkgs = import ./stub-pkgs.nix; }
      ../../modules/nixos
      machineConfig
    ]
    ++ extraModules;
  };
  inherit (evaluated) config;
  failedAssertions = map (assertion: assertion.message) (
    lib.filter (assertion: !assertion.assertion) config.assertions
  );
  rendered = {
    interfaces = config.networking.wireguard.interfaces;
    inherit (config.networking) hosts;
    inherit (config.boot.kernel) sysctl;
    firewall = {
      inherit (config.networking.firewall)
        allowedUDPPorts
        filterForward
        extraForwardRules
        trustedInterfaces
        ;
    };
    services = config.systemd.services;
    inherit (config.networking.wireguard) useNetworkd;
    systemPackages = map toString config.environment.systemPackages;
  };
  shownAssertions = lib.concatMapStrings (message: "- ${message}\n") failedAssertions;
in
{
  inherit failedAssertions;
  # What a NixOS system build does: stop at failed assertions, show them.
  system =
    if failedAssertions != [ ] then throw "\nFailed assertions:\n${shownAssertions}" else rendered;
  # Rendered even when assertions fail, to check nothing half-built leaks out.
  inherit rendered;
}
