# Evaluates flake.nix's outputs with nixpkgs' lib and ./stub-nixpkgs.nix in
# place of the nixpkgs input, and the VM test's machines with the NixOS
# harness, and returns what the tests look at.
#
#   nix-instantiate --eval --strict --json --read-write-mode eval-flake.nix \
#     --argstr libPath <dir with nixpkgs' lib/>
{ libPath }:
let
  lib = import "${libPath}/lib";
  flake = import ../../flake.nix;
  outputs = flake.outputs {
    self = outputs;
    nixpkgs = import ./stub-nixpkgs.nix { inherit lib; };
  };
  system = "x86_64-linux";
  package = outputs.packages.${system}.default;
  vmTest = outputs.checks.${system}.failover;

  # One machine of the VM test, as the test framework would configure it.
  vmNode =
    name: module:
    let
      evaluated = lib.evalModules {
        modules = [
          ./nixos-options.nix
          {
            _module.args.pkgs = import ./stub-pkgs.nix;
            networking.hostName = name;
          }
          module
        ];
      };
      inherit (evaluated) config;
    in
    {
      failedAssertions = map (assertion: assertion.message) (
        lib.filter (assertion: !assertion.assertion) config.assertions
      );
      interfaces = config.networking.wireguard.interfaces;
      services = lib.attrNames config.systemd.services;
      hosts = config.networking.hosts;
      etc = lib.mapAttrs (_: file: {
        source = toString file.source;
        inherit (file) mode;
      }) config.environment.etc;
    };
in
{
  inputs = lib.mapAttrs (_: input: input.url) flake.inputs;
  systems = lib.mapAttrs (_: lib.attrNames) {
    inherit (outputs)
      packages
      checks
      formatter
      devShells
      ;
  };
  checks = lib.attrNames outputs.checks.${system};
  devShells = lib.attrNames outputs.devShells.${system};
  formatter = outputs.formatter.${system}.name;
  clanModule = toString outputs.clan.modules.wireguard;
  nixosModules = lib.mapAttrs (_: toString) outputs.nixosModules;
  lib = lib.attrNames outputs.lib;
  package = {
    inherit (package)
      pname
      version
      pyproject
      makeWrapperArgs
      doCheck
      ;
    mainProgram = package.meta.mainProgram;
    dependencies = map (dependency: dependency.pname) package.dependencies;
    buildSystem = map (dependency: dependency.pname) package.build-system;
    src = toString package.src;
  };
  defaultIsTheCommand =
    outputs.packages.${system}.default == outputs.packages.${system}.clan-wireguard;
  plannerCheck = toString outputs.checks.${system}.planner;
  vmTest = {
    inherit (vmTest) name testScript;
    nodes = lib.mapAttrs vmNode vmTest.nodes;
  };
}
