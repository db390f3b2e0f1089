# For bench/clan_service.py: evaluates the machines of a clan through
# clan-core's service machinery, with either this flake's service or
# clan-core's own wireguard service, and returns the NixOS values that make
# up the mesh on each machine.
#
#   nix-instantiate --eval --strict --json eval-clan-services.nix \
#     --argstr libPath <dir with nixpkgs' lib/> --argstr clanCorePath <clan-core work tree> \
#     --argstr clanFile clan.json --argstr directory <clan directory> \
#     --argstr machines '["ctrl1"]'
#
# `clanFile` is JSON as in a clan.nix: `{ "machines": …, "instances": … }`,
# every instance of the same service. `module.input = "clan-wireguard"` picks
# this flake's service; no `module.input` picks clan-core's
# clanServices/<module.name>, as clan does. `machines` is a JSON list of the
# machines to evaluate, or `null` for all of them.
#
# Shared by both services, as in ../tests/nix-harness/eval-clan-service.nix:
# clan-core's module resolution, tag resolution, service evaluation (with its
# all-services wrapper and export interfaces) and vars options with the
# in-repo public store; clan-core's `clanLib`, whose `getPublicValue` reads
# the same directory. Not included: nixpkgs' NixOS modules (the options come
# from ../tests/nix-harness/nixos-options.nix, plus `networking.extraHosts`
# for clan-core's service), building anything, and the rest of clan's
# flake module.
{
  libPath,
  clanCorePath,
  clanFile,
  directory,
  machines ? "null",
}:
let
  lib = import "${libPath}/lib";
  clanLib = import "${clanCorePath}/lib" { inherit lib; };
  clan = builtins.fromJSON (builtins.readFile clanFile);
  harness = ../tests/nix-harness;

  flake = import ../flake.nix;
  flakeOutputs = flake.outputs {
    self = flakeOutputs;
    nixpkgs = {
      inherit lib;
      legacyPackages = { };
    };
  };
  flakeInputs.clan-wireguard = flakeOutputs;
  clanCoreModules.wireguard = "${clanCorePath}/clanServices/wireguard/default.nix";

  firstInstance = lib.head (lib.attrValues clan.instances);
  isOurs = (firstInstance.module.input or null) == "clan-wireguard";

  services = import (harness + "/clan-service-instances.nix") {
    inherit
      lib
      clanLib
      clanCorePath
      clan
      directory
      ;
    serviceModule = clanLib.resolveModule {
      moduleSpec = {
        input = null;
      }
      // firstInstance.module;
      inherit flakeInputs clanCoreModules;
    };
    clanName = "bench-clan";
  };
  service = services.config.allServices.wireguard;

  stubPackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  # clan-core's generators name python3 besides what our module touches.
  pkgs = import (harness + "/stub-pkgs.nix") // {
    python3 = stubPackage "python3";
  };

  machineModule = machineName: {
    imports = [
      (import (harness + "/clan-machine-vars.nix") {
        inherit
          lib
          clanCorePath
          directory
          pkgs
          machineName
          ;
      })
    ];
    # NixOS declares it in networking/hosts.nix; clan-core's service writes it.
    options.networking.extraHosts = lib.mkOption {
      type = lib.types.lines;
      default = "";
    };
  };

  ourPackage = {
    networking.clan-wireguard.package = stubPackage "clan-wireguard";
  };

  machine =
    machineName:
    let
      inherit
        (lib.evalModules {
          class = "nixos";
          modules = [
            (harness + "/nixos-options.nix")
            (machineModule machineName)
            service.result.final.${machineName}.nixosModule
          ]
          ++ lib.optional isOurs ourPackage;
        })
        config
        ;
    in
    {
      failedAssertions = map (assertion: assertion.message) (
        lib.filter (assertion: !assertion.assertion) config.assertions
      );
      interfaces = config.networking.wireguard.interfaces;
      inherit (config.networking) hosts extraHosts;
      inherit (config.boot.kernel) sysctl;
      inherit (config.networking.firewall) allowedUDPPorts;
      services = config.systemd.services;
    };

  selected =
    let
      requested = builtins.fromJSON machines;
    in
    if requested == null then lib.attrNames service.result.allMachines else requested;
in
lib.genAttrs selected machine
