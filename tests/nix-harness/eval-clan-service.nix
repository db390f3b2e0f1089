# Evaluates the clan service (modules/clan) the way clan-core does, without
# nixpkgs and without flake inputs, and returns what the tests look at.
#
#   nix-instantiate --eval --strict --json eval-clan-service.nix \
#     --argstr libPath <dir with nixpkgs' lib/> --argstr clanCorePath <clan-core work tree> \
#     --argstr clanFile clan.json --argstr directory <clan directory>
#
# `clanFile` is JSON: `{ "instances": …, "machines": … }` as in a clan.nix
# (inventory instances with `module.name` / `module.input`, roles with
# `machines` and `tags`; inventory machines with their tags).
#
# What is clan-core's own code here: the module resolution from a flake
# input's `clan.modules` (lib/resolve-module), tag resolution (lib/inventory),
# the service evaluation (lib/inventory/distributed-service: role interfaces,
# settings, perInstance/perMachine, exports checked against clan's export
# interfaces) and the vars generator options (nixosModules/clanCore/vars,
# with the in-repo public store). What stands in for the rest: this flake's
# outputs are evaluated with nixpkgs' lib only (no packages), the per-instance
# wiring of inventory instances to services (modules/clan/distributed-services.nix
# needs clan's whole flake module) is rewritten below, the NixOS options come
# from ./nixos-options.nix, and secret files get the path shape of clan's sops
# store.
{
  libPath,
  clanCorePath,
  clanFile,
  directory,
  # A directory with bin/clan-wireguard, used as the package in generator scripts.
  packagePath ? "/nix/store/00000000000000000000000000000000-clan-wireguard",
}:
let
  lib = import "${libPath}/lib";
  clanLib = import "${clanCorePath}/lib" { inherit lib; };
  clan = builtins.fromJSON (builtins.readFile clanFile);

  # This flake as an input of the clan, named as the README tells users.
  flake = import ../../flake.nix;
  flakeOutputs = flake.outputs {
    self = flakeOutputs;
    nixpkgs = {
      inherit lib;
      legacyPackages = { };
    };
  };
  flakeInputs.clan-wireguard = flakeOutputs;

  resolvedModule =
    instance:
    clanLib.resolveModule {
      moduleSpec = {
        input = null;
      }
      // instance.module;
      inherit flakeInputs;
      clanCoreModules = { };
    };

  firstInstance = lib.head (lib.attrValues clan.instances);

  services = import ./clan-service-instances.nix {
    inherit
      lib
      clanLib
      clanCorePath
      clan
      directory
      ;
    serviceModule = resolvedModule firstInstance;
    clanName = "test-clan";
  };
  service = services.config.allServices.wireguard;

  stubPkgs = import ./stub-pkgs.nix;

  # clan-core's vars options for one machine, and our package's stand-in.
  varsModule = machineName: {
    imports = [
      (import ./clan-machine-vars.nix {
        inherit
          lib
          clanCorePath
          directory
          machineName
          ;
        pkgs = stubPkgs;
      })
    ];
    networking.clan-wireguard.package = {
      type = "derivation";
      name = "clan-wireguard";
      outPath = packagePath;
    };
  };

  machine =
    machineName:
    let
      evaluated = lib.evalModules {
        modules = [
          ./nixos-options.nix
          (varsModule machineName)
          service.result.final.${machineName}.nixosModule
        ];
      };
      inherit (evaluated) config;
      generators = lib.mapAttrs (_name: generator: {
        inherit (generator) script validation share;
        files = lib.mapAttrs (_name: file: { inherit (file) secret deploy; }) generator.files;
        privateKeyPath =
          if generator.files ? privatekey then generator.files.privatekey.path else null;
      }) config.clan.core.vars.generators;
      failedAssertions = map (assertion: assertion.message) (
        lib.filter (assertion: !assertion.assertion) config.assertions
      );
    in
    {
      inherit generators failedAssertions;
      instances = lib.mapAttrs (_name: instance: {
        inherit (instance) machine roles privateKeyFile;
        varsDirectory = toString instance.varsDirectory;
      }) config.networking.clan-wireguard.instances;
      interfaces = config.networking.wireguard.interfaces;
      inherit (config.networking) hosts;
      inherit (config.boot.kernel) sysctl;
      inherit (config.networking.firewall) allowedUDPPorts;
      services = lib.attrNames config.systemd.services;
    };
in
{
  machines = lib.mapAttrs (name: _: machine name) service.result.allMachines;
  manifest = {
    inherit (service.manifest) name categories;
    readme = service.manifest.readme != "";
  };
  roleDescriptions = lib.mapAttrs (_: role: role.description) service.roles;
  schema = service.result.api.schema;
  serviceAssertions = lib.mapAttrs (_: assertion: assertion.assertion) service.result.assertions;
  # Exports by scope, evaluated against the interfaces as clan does.
  exports =
    (lib.evalModules {
      modules = [
        {
          options.exports = lib.mkOption {
            type = lib.types.lazyAttrsOf (lib.types.submoduleWith { modules = [ ]; });
          };
          config.exports = services.config.exports;
        }
      ];
    }).config.exports;
}
