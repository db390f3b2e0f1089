# A stand-in for the nixpkgs flake input: nixpkgs' real lib, and package sets
# whose builders return their arguments instead of building. `callPackage`
# really calls the package function, so generators/package.nix is evaluated
# as nixpkgs would evaluate it.
{ lib }:
let
  stubPackage = name: {
    type = "derivation";
    inherit name;
    pname = name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };

  packagesFor =
    system:
    let
      pkgs = import ./stub-pkgs.nix // {
        inherit lib;
        stdenv.hostPlatform = {
          inherit system;
          isLinux = true;
          isDarwin = false;
        };
        callPackage =
          path: overrides:
          let
            function = import path;
          in
          function (builtins.intersectAttrs (builtins.functionArgs function) pkgs // overrides);
        python3Packages = {
          buildPythonApplication =
            arguments:
            arguments
            // {
              type = "derivation";
              name = "${arguments.pname}-${arguments.version}";
              outPath = "/nix/store/00000000000000000000000000000000-${arguments.pname}";
            };
          setuptools = stubPackage "setuptools";
          typer = stubPackage "typer";
          cryptography = stubPackage "cryptography";
        };
        nix = stubPackage "nix";
        nixfmt = stubPackage "nixfmt";
        testers.runNixOSTest = test: test;
      };
    in
    pkgs;
in
{
  inherit lib;
  legacyPackages = lib.genAttrs [
    "x86_64-linux"
    "aarch64-linux"
  ] packagesFor;
}
