# The clan service: clan-core's wireguard inventory syntax, our generators and
# our NixOS module.
#
# A thin adapter. The roles declare the settings a clan.nix may use (the same
# names as clan-core's service, so an instance only changes `module.input`);
# each member gets the two vars generators, which call our CLI, and one
# `networking.clan-wireguard.instances.<instance>` entry. Everything else
# (addresses, peers, routes, validation) is the planner's, through the NixOS
# module.
{
  clanLib,
  config,
  lib,
  directory,
  ...
}:
let
  inherit (lib) mkOption types;

  planner = import ../planner;
  inherit (planner) readVarsDir;

  # Every instance planned once, here, for all its members. Each machine's
  # NixOS module receives its instance's result instead of planning the
  # whole instance again in its own evaluation: with n members that was n
  # times the work of reading, checking and composing every member.
  planned = lib.mapAttrs (
    instanceName: instance:
    planner.planInstance {
      name = instanceName;
      instance.roles = lib.mapAttrs (
        roleName: role:
        {
          machines = lib.mapAttrs (machineName: _: {
            settings =
              builtins.removeAttrs
                config.instances.${instanceName}.roles.${roleName}.machines.${machineName}.finalSettings.config
                [ "_module" ];
          }) role.machines;
        }
      ) instance.roles;
      publicValue = readVarsDir directory;
    }
  ) config.instances;

  port = types.ints.between 1 65535;

  sharedInterface = {
    options.domain = mkOption {
      type = types.nullOr types.str;
      default = null;
      defaultText = lib.literalExpression "instanceName";
      example = "mesh.example.com";
      description = ''
        Host names of the members are `<machine>.<domain>` in /etc/hosts.
        `null` uses the instance name. Every member of an instance must use
        the same domain: set it role-wide or on no machine at all.
      '';
    };
    options.mtu = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      example = 1380;
      description = ''
        MTU of the WireGuard interface. `null` leaves the kernel's default
        (1420), which suits an uplink MTU of 1500.
      '';
    };
  };

  # Settings as the NixOS module reads them: clan hands over evaluated
  # settings, which also carry the module system's own `_module`.
  memberRoles =
    roles:
    lib.mapAttrs (_roleName: role: {
      machines = lib.mapAttrs (_machineName: member: {
        settings = builtins.removeAttrs member.settings [ "_module" ];
      }) role.machines;
    }) roles;

  # What one member adds to its machine: generators and the instance.
  memberModule =
    {
      instanceName,
      roles,
      machine,
      roleName,
    }:
    {
      config,
      ...
    }:
    let
      directory = config.clan.core.settings.directory;
      cli = "${config.networking.clan-wireguard.package}/bin/clan-wireguard";
      keysGenerator = "wireguard-keys-${instanceName}";
      networkGenerator = "wireguard-network-${instanceName}";
      networkFile = if roleName == "controller" then "prefix" else "suffix";
      ownsNetworkGenerator = roleName == "controller" || !(lib.elem "controller" machine.roles);

      # The prefixes (suffixes) other controllers (peers) already hold, so a
      # new member does not pick one of them. Read only when clan builds the
      # script, i.e. when it runs the generator.
      taken =
        let
          publicValue = readVarsDir directory;
          others = lib.filter (name: name != machine.name) (
            lib.attrNames (roles.${roleName}.machines or { })
          );
          values = map (
            other:
            publicValue {
              machine = other;
              generator = networkGenerator;
              file = networkFile;
            }
          ) others;
        in
        lib.filter (value: value != null) values;
    in
    {
      clan.core.vars.generators.${keysGenerator} = {
        files.privatekey = { };
        files.publickey.secret = false;
        script = ''
          ${cli} generate keys --out "$out"
        '';
      };

      # A machine in both roles is a mistake the planner reports; giving it
      # one network generator keeps clan from failing first on two scripts.
      clan.core.vars.generators.${networkGenerator} = lib.mkIf ownsNetworkGenerator {
        files.${networkFile}.secret = false;
        # A renamed machine gets a new address, like clan-core's service.
        validation.hostname = machine.name;
        script = lib.concatStringsSep " " (
          [
            cli
            "generate"
            roleName
            ''--out "$out"''
            "--instance"
            (lib.escapeShellArg instanceName)
            "--machine"
            (lib.escapeShellArg machine.name)
          ]
          ++ lib.concatMap (value: [
            "--taken"
            (lib.escapeShellArg value)
          ]) taken
        );
      };

      networking.clan-wireguard.instances.${instanceName} = {
        machine = machine.name;
        roles = memberRoles roles;
        varsDirectory = directory;
        # Set by one role only: a machine wrongly in both would otherwise
        # define it twice, and the planner's message must win.
        planned = lib.mkIf ownsNetworkGenerator planned.${instanceName};
        privateKeyFile = config.clan.core.vars.generators.${keysGenerator}.files.privatekey.path;
      };
    };

  # The host name a member exports, matching its /etc/hosts entry.
  hostName =
    {
      instanceName,
      settings,
      machine,
    }:
    "${machine.name}.${if settings.domain == null then instanceName else settings.domain}";

  perInstanceOf =
    roleName:
    {
      instanceName,
      settings,
      roles,
      machine,
      mkExports,
      ...
    }:
    {
      exports = mkExports {
        peer.hosts = [ { plain = hostName { inherit instanceName settings machine; }; } ];
      };
      nixosModule = memberModule {
        inherit
          instanceName
          roles
          machine
          roleName
          ;
      };
    };
in
{
  _class = "clan.service";
  manifest.name = "clan-wireguard";
  manifest.description = "WireGuard mesh with IPv6 addresses, names in /etc/hosts and controller failover";
  manifest.categories = [ "Network" ];
  manifest.readme = builtins.readFile ./README.md;
  manifest.exports.out = [
    "networking"
    "peer"
  ];

  exports = lib.mapAttrs' (instanceName: _: {
    name = clanLib.buildScopeKey {
      inherit instanceName;
      serviceName = config.manifest.name;
    };
    value.networking.priority = 1000;
  }) config.instances;

  roles.controller = {
    description = "Routes the mesh: reachable at a public endpoint, forwards between peers.";
    interface = {
      imports = [ sharedInterface ];
      options.endpoint = mkOption {
        type = types.str;
        example = "vpn1.example.com";
        description = ''
          Where peers and other controllers reach this controller: a host
          name, an IPv4 address or an IPv6 address (brackets optional).
        '';
      };
      options.port = mkOption {
        type = port;
        default = 51820;
        example = 51821;
        description = "UDP port the controller listens on; opened in the firewall.";
      };
    };
    perInstance = perInstanceOf "controller";
  };

  roles.peer = {
    description = "Joins the mesh through every controller; reachable by name through its designated one.";
    interface = {
      imports = [ sharedInterface ];
      options.controller = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "server1";
        description = ''
          The controller whose subnet holds this peer's host name. Needed
          when the instance has more than one controller; with a single
          controller `null` picks it.
        '';
      };
      options.port = mkOption {
        type = types.nullOr port;
        default = null;
        example = 51821;
        description = ''
          A fixed UDP listen port, opened in the firewall; `null` lets the
          kernel choose one (peers dial out, so none is needed).
        '';
      };
      options.keepalive = mkOption {
        type = types.nullOr (types.ints.between 0 65535);
        default = 25;
        example = 15;
        description = ''
          Seconds between keepalive packets towards the controllers, which
          keep NAT mappings open so controllers can reach the peer; `null`
          or `0` sends none.
        '';
      };
    };
    perInstance = perInstanceOf "peer";
  };

  perMachine = _: {
    nixosModule = {
      imports = [ ../nixos ];
    };
  };
}
