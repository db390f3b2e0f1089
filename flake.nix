{
  description = "WireGuard mesh VPN for NixOS fleets managed with clan";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    {
      self,
      nixpkgs,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The VM test's mesh, planned at evaluation time: a check that fails
      # when the planner reports a problem or misses a machine.
      plannerCheck =
        pkgs:
        let
          inventory = builtins.fromJSON (builtins.readFile ./checks/fixtures/inventory.json);
          planned = self.lib.planInstance {
            name = inventory.instanceName;
            instance = { inherit (inventory) roles; };
            publicValue = self.lib.readVarsDir ./checks/fixtures;
          };
          members = builtins.attrNames (
            inventory.roles.controller.machines // inventory.roles.peer.machines
          );
          plans = nixpkgs.lib.genAttrs members (machine: planned.machines.${machine});
        in
        if planned.problems != [ ] then
          throw "planner check: ${builtins.concatStringsSep "; " planned.problems}"
        else
          pkgs.writeText "clan-wireguard-planner-plans.json" (builtins.toJSON plans);
    in
    {
      # The clan service: `module.input = "<this flake's input name>"` with
      # `module.name = "wireguard"` in clan.nix.
      clan.modules.wireguard = ./modules/clan;

      nixosModules.clan-wireguard = ./modules/nixos;
      nixosModules.default = self.nixosModules.clan-wireguard;

      # The planner: pure Nix, builtins only (docs/plan.md).
      lib = import ./modules/planner;

      packages = forEachSystem (pkgs: {
        clan-wireguard = pkgs.callPackage ./generators/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.clan-wireguard;
      });

      checks = forEachSystem (pkgs: {
        failover = import ./checks/failover.nix {
          inherit pkgs;
          nixosModule = self.nixosModules.default;
        };
        planner = plannerCheck pkgs;
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      });

      # nixfmt in RFC 166 style (nixpkgs' `nixfmt` since 25.05).
      formatter = forEachSystem (pkgs: pkgs.nixfmt);

      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (python: [
              python.typer
              python.cryptography
              python.hypothesis
              python.pytest
              python.mypy
            ]))
            pkgs.ruff
            pkgs.nix
            pkgs.wireguard-tools
            pkgs.wireguard-go
            pkgs.iproute2
            pkgs.iputils
          ];
          # Run the CLI from the checkout, as `pip install -e generators` does.
          shellHook = ''
            export PYTHONPATH="$PWD/generators''${PYTHONPATH:+:$PYTHONPATH}"
          '';
        };
      });
    };
}
