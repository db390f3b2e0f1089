# The few attributes of `pkgs` the modules touch during evaluation. Packages
# are names only, never built; `writeText` writes the real file into the
# store (evaluate with --read-write-mode), so tests can read what a unit is
# given.
let
  stubPackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
in
{
  writeText = name: text: builtins.toFile name text;
  writeScript = name: text: builtins.toFile name text;
  callPackage = _function: _arguments: stubPackage "clan-wireguard";
  wireguard-tools = stubPackage "wireguard-tools";
  iproute2 = stubPackage "iproute2";
  iputils = stubPackage "iputils";
  coreutils = stubPackage "coreutils";
  stdenv.hostPlatform = {
    system = "x86_64-linux";
    isLinux = true;
    isDarwin = false;
  };
}
