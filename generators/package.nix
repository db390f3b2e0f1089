# The `clan-wireguard` command (generators, vars, lab, failover agent), built
# with nixpkgs' Python packages.
#
# The planner is Nix: the command evaluates it with `nix-instantiate`, from
# the store copy of ../modules named by CLAN_WIREGUARD_NIX_DIR. The tools it
# runs (wg, ip, ping, nix-instantiate) are put in its PATH.
{
  lib,
  python3Packages,
  wireguard-tools,
  iproute2,
  iputils,
  nix,
}:
let
  pyproject = lib.importTOML ./pyproject.toml;
in
python3Packages.buildPythonApplication {
  pname = pyproject.project.name;
  inherit (pyproject.project) version;
  pyproject = true;

  # Only what the build reads (pyproject.toml and the package's sources), so
  # caches and build leftovers in a checkout do not change the source.
  src = builtins.path {
    name = "clan-wireguard-source";
    path = ./.;
    filter =
      path: type:
      let
        relative = lib.removePrefix "${toString ./.}/" (toString path);
      in
      relative == "pyproject.toml"
      || relative == "clan_wireguard"
      || (
        lib.hasPrefix "clan_wireguard/" relative
        && (
          (type == "directory" && baseNameOf relative != "__pycache__")
          || lib.hasSuffix ".py" relative
          || baseNameOf relative == "py.typed"
        )
      );
  };

  build-system = [ python3Packages.setuptools ];
  dependencies = [
    python3Packages.typer
    python3Packages.cryptography
  ];

  makeWrapperArgs = [
    "--set"
    "CLAN_WIREGUARD_NIX_DIR"
    "${../modules}"
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [
      wireguard-tools
      iproute2
      iputils
      nix
    ])
  ];

  # The test suite needs root, network namespaces and nix-instantiate; it runs
  # in CI and in the VM tests, not in the build sandbox.
  doCheck = false;
  pythonImportsCheck = [ "clan_wireguard" ];

  meta = {
    description = pyproject.project.description;
    license = lib.licenses.mit;
    mainProgram = "clan-wireguard";
    platforms = lib.platforms.linux;
  };
}
