# One wireguard-style clan service with every instance of a clan, evaluated
# by clan-core's own code: tag resolution (lib/inventory) and the service
# evaluation inside clan-core's wrapper of all services (role interfaces,
# settings, perInstance/perMachine, exports checked against clan's export
# interfaces). Shared by ./eval-clan-service.nix (tests) and
# bench/eval-clan-services.nix (our service against clan-core's).
#
# Returns clan-core's evaluation of all services: the service itself is
# `.config.allServices.wireguard` (`.result.final.<machine>.nixosModule`,
# `.result.allMachines`, …), the exports `.config.exports`.
{
  lib,
  clanLib,
  clanCorePath,
  # The clan, as in a clan.nix: `{ instances = …; machines = …; }`.
  clan,
  directory,
  # The service module, resolved from the first instance's `module`.
  serviceModule,
  clanName,
}:
let
  inventoryMachines = clan.machines or { };

  # An inventory instance as clan-core hands it to the service: tags resolved
  # into machines, a machine's settings plus those of its tags.
  instanceRoles =
    instanceName: instance:
    lib.mapAttrs (
      roleName: role:
      let
        tags = role.tags or { };
        members = clanLib.inventory.resolveTags {
          members = {
            machines = lib.attrNames (role.machines or { });
            tags = lib.attrNames tags;
          };
          machines = inventoryMachines;
          inherit instanceName roleName;
        };
      in
      (builtins.removeAttrs role [ "tags" ])
      // {
        machines = lib.genAttrs members.machines (machineName: {
          settings.imports = [
            (role.machines.${machineName}.settings or { })
          ]
          ++ map (tag: tags.${tag}.settings or { }) (
            lib.filter (tag: tags ? ${tag}) (inventoryMachines.${machineName}.tags or [ ])
          );
        });
      }
    ) (instance.roles or { });

  # clan's export interfaces, each wrapped into an option as clan does.
  exportInterfaces =
    lib.mapAttrs
      (name: interface: {
        options.${name} = lib.mkOption {
          type = lib.types.nullOr (lib.types.submodule interface);
          default = null;
        };
      })
      {
        peer = import "${clanCorePath}/modules/clan/export-modules/peer.nix";
        networking = import "${clanCorePath}/modules/clan/export-modules/networking.nix";
      };

  services = lib.evalModules {
    specialArgs = {
      inherit clanLib;
      _ctx = [
        "clan"
        "_services"
        "allServices"
      ];
    };
    modules = [
      (import "${clanCorePath}/lib/inventory/distributed-service/all-services-wrapper.nix" {
        inherit directory;
        exports = { };
        inherit exportInterfaces;
        meta.name = clanName;
      })
      {
        allServices.wireguard.imports = [
          serviceModule
        ]
        ++ lib.mapAttrsToList (instanceName: instance: {
          instances.${instanceName}.roles = instanceRoles instanceName instance;
        }) clan.instances;
      }
    ];
  };
in
services
