# The clan-wireguard NixOS module: renders the planner's plans onto NixOS.
#
# Every instance this machine belongs to is planned once (modules/planner),
# then each plan becomes one WireGuard interface, its routes, /etc/hosts
# entries, firewall ports, IPv6 forwarding on controllers and, on peers of
# instances with several controllers, the failover agent. Problems found by
# the planner become assertions; nothing is rendered while there are any, so
# evaluation shows the planner's message and never a trace from a half-built
# interface.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.networking.clan-wireguard;
  inherit (lib) mkOption types;

  planner = import ../planner;

  # Public values of one instance: values written in `publicValues` win over
  # the clan directory, so a single value can be pinned or tried by hand.
  publicValueOf =
    instance:
    let
      fromAttrs = planner.publicValuesFromAttrs instance.publicValues;
      fromDirectory =
        if instance.varsDirectory == null then
          (_: null)
        else
          planner.readVarsDir instance.varsDirectory;
    in
    query:
    let
      explicit = fromAttrs query;
    in
    if explicit != null then explicit else fromDirectory query;

  # Only the shape the planner reads: clan's role submodules carry more.
  plannerRoles =
    roles:
    lib.mapAttrs (_roleName: role: {
      inherit (role) settings;
      machines = lib.mapAttrs (
        _machineName: machine: { inherit (machine) settings; }
      ) role.machines;
    }) roles;

  planning = lib.mapAttrs (
    name: instance:
    if instance.planned != null then
      instance.planned
    else
      planner.planInstance {
        inherit name;
        instance.roles = plannerRoles instance.roles;
        publicValue = publicValueOf instance;
      }
  ) cfg.instances;

  optionPath = name: option: "networking.clan-wireguard.instances.${name}.${option}";

  # Problems that only this module can see: how the instance is wired into
  # this machine rather than what the instance itself says.
  localProblems =
    name: instance:
    let
      prefix = "wireguard instance '${name}', machine '${instance.machine}'";
      isMember = planning.${name}.machines ? ${instance.machine};
      keyInStore =
        instance.privateKeyFile != null && lib.hasPrefix builtins.storeDir instance.privateKeyFile;
    in
    lib.optional (!isMember)
      "${prefix}: this machine is not in roles.controller.machines or roles.peer.machines of the instance; add it to a role, or set ${optionPath name "machine"} to the machine name used there"
    ++ lib.optional (instance.privateKeyFile == null)
      "${prefix}: ${optionPath name "privateKeyFile"} is not set; point it at the file holding this machine's WireGuard private key (written by `wg genkey`, readable by root only)"
    ++ lib.optional keyInStore
      "${prefix}: ${optionPath name "privateKeyFile"} = \"${instance.privateKeyFile}\" is in the Nix store, which every user can read; keep the private key in a file outside the store (e.g. deployed by sops-nix or clan vars)";

  instanceProblems = lib.concatLists (
    lib.mapAttrsToList (
      name: instance: planning.${name}.problems ++ localProblems name instance
    ) cfg.instances
  );

  # The plan of each instance, with the module options that go with it.
  members = lib.mapAttrsToList (name: instance: {
    inherit name instance;
    plan = planning.${name}.machines.${instance.machine};
  }) cfg.instances;

  # Clashes between instances (listen ports, interface names) can only be
  # judged from sound plans: with problems above, plans hold placeholders.
  machineProblems =
    if instanceProblems != [ ] || members == [ ] then
      [ ]
    else
      planner.machineProblems {
        machine = (lib.head members).instance.machine;
        plans = map (member: member.plan) members;
      };

  backendProblems =
    lib.optional
      (
        cfg.instances != { }
        && options.networking ? wireguard
        && options.networking.wireguard ? useNetworkd
        && config.networking.wireguard.useNetworkd
      )
      "clan-wireguard: networking.wireguard.useNetworkd = true is not supported: the mesh's routes are added by the interface's postSetup script, which the networkd backend cannot run; set networking.wireguard.useNetworkd = false (other WireGuard interfaces keep working with the script backend)";

  problems = instanceProblems ++ machineProblems ++ backendProblems;

  # The failover agent owns the allowed IPs of the controllers on this
  # interface at run time.
  runsFailoverAgent = member: member.plan.failover != null && member.instance.failover.enable;

  isIPv4Literal = host: builtins.match "[0-9]+(\\.[0-9]+){3}" host != null;
  isHostName = host: host != null && !(isIPv4Literal host) && !(lib.hasInfix ":" host);

  renderPeer =
    member: peer:
    {
      # Named after the machine, so the peer's unit is
      # wireguard-<interface>-peer-<machine>.service.
      inherit (peer) name publicKey allowedIPs;
    }
    // lib.optionalAttrs (peer.endpoint != null) { inherit (peer) endpoint; }
    // lib.optionalAttrs (peer.persistentKeepalive != null) { inherit (peer) persistentKeepalive; }
    # A host name is resolved once when the peer is set up: refreshing it heals
    # a DNS failure at boot and follows a controller whose address changed.
    # nixpkgs' refresh re-applies the peer's allowed IPs each time, which would
    # undo the failover agent's moves; where the agent runs it re-resolves a
    # controller's endpoint itself whenever it finds it down.
    // lib.optionalAttrs (
      isHostName peer.endpointHost && !(runsFailoverAgent member) && cfg.endpointRefreshSeconds > 0
    ) { dynamicEndpointRefreshSeconds = cfg.endpointRefreshSeconds; };

  ip = "${pkgs.iproute2}/bin/ip";

  renderInterface =
    member:
    let
      inherit (member) plan;
    in
    {
      ips = plan.addresses;
      privateKeyFile = member.instance.privateKeyFile;
      # Routes come from the plan, not from allowed IPs: the failover agent
      # moves allowed IPs between controllers while the routes stay.
      allowedIPsAsRoutes = false;
      postSetup = map (route: "${ip} -6 route replace ${route} dev ${plan.interface}") plan.routes;
      # The routes normally vanish with the link; this cleans up if it stays.
      postShutdown = map (
        route: "${ip} -6 route del ${route} dev ${plan.interface} 2>/dev/null || true"
      ) plan.routes;
      peers = map (renderPeer member) plan.peers;
    }
    // lib.optionalAttrs (plan.listenPort != null) { listenPort = plan.listenPort; }
    // lib.optionalAttrs (plan.mtu != null) { inherit (plan) mtu; };

  forwardingInterfaces = map (member: member.plan.interface) (
    lib.filter (member: member.plan.forwarding) members
  );
  forwards = forwardingInterfaces != [ ];

  agentMembers = lib.filter runsFailoverAgent members;

  renderAgent =
    member:
    let
      inherit (member) plan;
      inherit (member.instance) failover;
      # The plan holds no secret: public keys, addresses, endpoints.
      planFile = pkgs.writeText "${plan.interface}-plan.json" (builtins.toJSON plan);
      interfaceUnit = "wireguard-${plan.interface}.service";
    in
    lib.nameValuePair "clan-wireguard-failover-${plan.interface}" {
      description = "clan-wireguard failover agent for ${plan.interface} (instance ${plan.instance})";
      # Bound to the interface: stopped with it, started again with it.
      bindsTo = [ interfaceUnit ];
      after = [ interfaceUnit ];
      wantedBy = [
        interfaceUnit
        "multi-user.target"
      ];
      path = [
        pkgs.wireguard-tools
        pkgs.iproute2
      ];
      # Keep restarting: a peer without its agent loses names while a
      # controller is down.
      unitConfig.StartLimitIntervalSec = 0;
      serviceConfig = {
        ExecStart = lib.concatStringsSep " " [
          "${cfg.package}/bin/clan-wireguard failover run"
          "--plan ${planFile}"
          "--state-dir /run/clan-wireguard"
          "--interval ${toString failover.probeInterval}"
          "--down-after ${toString failover.downAfter}"
          "--up-after ${toString failover.upAfter}"
        ];
        Restart = "always";
        RestartSec = 2;
        # Agents of several instances share the directory, one state file
        # each (`clan-wireguard failover status` reads them all): stopping one
        # must not delete the others' files.
        RuntimeDirectory = "clan-wireguard";
        RuntimeDirectoryPreserve = "yes";
        # `wg set` needs CAP_NET_ADMIN; the ICMPv6 echo probes use a raw
        # socket bound to the mesh interface, which needs CAP_NET_RAW.
        CapabilityBoundingSet = [
          "CAP_NET_ADMIN"
          "CAP_NET_RAW"
        ];
        AmbientCapabilities = [
          "CAP_NET_ADMIN"
          "CAP_NET_RAW"
        ];
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        # Netlink for wg and ip, AF_INET6 for the probes, AF_UNIX for
        # wireguard-go's control socket; AF_INET for nothing but name lookups.
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" ];
        UMask = "0077";
      };
    };

  hostsOf = member: member.plan.hosts;

  instanceOptions =
    { name, ... }:
    {
      options = {
        machine = mkOption {
          type = types.str;
          default = config.networking.hostName;
          defaultText = lib.literalExpression "config.networking.hostName";
          example = "server1";
          description = ''
            The name of this machine in the instance's roles. Set it when the
            host name differs from the name used in
            `roles.controller.machines` / `roles.peer.machines`.
          '';
        };

        roles = mkOption {
          description = ''
            The members of the instance and their settings, written exactly as
            an instance in clan's `clan.nix`: `roles.controller.machines.<name>.settings`
            (`endpoint`, `port`, `domain`, `mtu`) and
            `roles.peer.machines.<name>.settings` (`controller`, `port`,
            `keepalive`, `domain`, `mtu`), plus role-wide
            `roles.<role>.settings`. Every machine of the mesh uses the same
            value. The settings are described in docs/plan.md; mistakes are
            reported by the planner as assertions that name the setting.
          '';
          example = lib.literalExpression ''
            {
              controller.machines.server1.settings.endpoint = "vpn1.example.com";
              controller.machines.server2.settings.endpoint = "vpn2.example.com";
              peer.machines.laptop1.settings.controller = "server1";
            }
          '';
          default = { };
          type = types.submodule {
            options = lib.genAttrs [ "controller" "peer" ] (
              roleName:
              mkOption {
                default = { };
                description = "Machines with the ${roleName} role and their settings.";
                type = types.submodule {
                  options.settings = mkOption {
                    type = types.attrsOf types.anything;
                    default = { };
                    description = "Settings shared by every ${roleName}; a machine's own settings win.";
                  };
                  options.machines = mkOption {
                    default = { };
                    description = "The ${roleName}s of the instance, by machine name.";
                    type = types.attrsOf (
                      types.submodule {
                        options.settings = mkOption {
                          type = types.attrsOf types.anything;
                          default = { };
                          description = "This machine's settings.";
                        };
                      }
                    );
                  };
                };
              }
            );
          };
        };

        planned = mkOption {
          type = types.nullOr types.raw;
          default = null;
          internal = true;
          description = ''
            The instance already planned (the result of the planner's
            `planInstance`), set by the clan service, which plans each
            instance once for all its members. When null, this module plans
            the instance from `roles` and the public values itself.
          '';
        };

        publicValues = mkOption {
          type = types.attrsOf (types.attrsOf (types.attrsOf types.str));
          default = { };
          example = lib.literalExpression ''
            {
              server1."wireguard-keys-vpn".publickey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
              server1."wireguard-network-vpn".prefix = "fd51:19c1:3b:f700";
              laptop1."wireguard-keys-vpn".publickey = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
              laptop1."wireguard-network-vpn".suffix = "8750:a09b:0:1";
            }
          '';
          description = ''
            Public values of the members, by machine, generator and file:
            `wireguard-keys-${name}`.`publickey` for every member,
            `wireguard-network-${name}`.`prefix` for controllers and
            `wireguard-network-${name}`.`suffix` for peers. Values given here
            win over those found in {option}`varsDirectory`.
          '';
        };

        varsDirectory = mkOption {
          type = types.nullOr types.path;
          default = null;
          example = lib.literalExpression "./.";
          description = ''
            A clan directory whose `vars/per-machine/<machine>/<generator>/<file>/value`
            files hold the public values (what `clan vars generate` and
            `clan-wireguard vars generate` write). Read at evaluation time;
            only public files are read.
          '';
        };

        privateKeyFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/run/secrets/wireguard-${name}";
          description = ''
            Path, on the target machine, of this machine's WireGuard private
            key. A string so the key is never copied into the world-readable
            Nix store; deploy the file by other means (clan vars, sops-nix,
            agenix) and keep it readable by root only.
          '';
        };

        openFirewall = mkOption {
          type = types.bool;
          default = true;
          example = false;
          description = ''
            Open the instance's UDP listen port in the firewall: the port of a
            controller, and a peer's fixed `port` setting when it has one.
          '';
        };

        failover = {
          enable = mkOption {
            type = types.bool;
            default = true;
            example = false;
            description = ''
              Run the failover agent (`clan-wireguard failover run`) for this
              instance. It acts only on peers of instances with two or more
              controllers: while a controller is down it hands that
              controller's subnet to a live one, so every name stays
              reachable. Elsewhere this option has no effect.
            '';
          };
          probeInterval = mkOption {
            type = types.numbers.positive;
            default = 1;
            example = 0.5;
            description = "Seconds between two probes of each controller.";
          };
          downAfter = mkOption {
            type = types.ints.positive;
            default = 3;
            example = 5;
            description = "Missed probes in a row after which a controller counts as down.";
          };
          upAfter = mkOption {
            type = types.ints.positive;
            default = 2;
            example = 3;
            description = "Answered probes in a row after which a controller counts as up again.";
          };
        };
      };
    };
in
{
  options.networking.clan-wireguard = {
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../../generators/package.nix { };
      defaultText = lib.literalMD "the `clan-wireguard` command built from this repository";
      example =
        lib.literalExpression "inputs.clan-wireguard.packages.\${pkgs.stdenv.hostPlatform.system}.default";
      description = "The `clan-wireguard` command; the failover agent runs from it.";
    };

    instances = mkOption {
      type = types.attrsOf (types.submodule instanceOptions);
      default = { };
      example = lib.literalExpression ''
        {
          vpn = {
            roles.controller.machines.server1.settings.endpoint = "vpn1.example.com";
            roles.peer.machines.laptop1 = { };
            varsDirectory = ./.;
            privateKeyFile = "/run/secrets/wireguard-vpn";
          };
        }
      '';
      description = ''
        WireGuard mesh instances this machine belongs to. The attribute name
        is the instance name: it names the interface, the generators of the
        public values and, by default, the host-name suffix (`<machine>.<instance>`).
      '';
    };

    endpointRefreshSeconds = mkOption {
      type = types.ints.unsigned;
      default = 60;
      example = 300;
      description = ''
        How often an endpoint given as a host name is resolved again, so a
        name that did not resolve at boot, or a controller whose address
        changed, is reached without a restart. `0` resolves once. Peers that
        run the failover agent leave this to the agent.
      '';
    };

    uplinkInterfaces = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "eth0" ];
      description = ''
        Interfaces that get their IPv6 default route from router
        advertisements (SLAAC). On a controller, IPv6 forwarding makes the
        kernel ignore router advertisements; for each interface listed here
        `net.ipv6.conf.<interface>.accept_ra` is set to 2 so it keeps its
        route. With systemd-networkd also set `IPv6AcceptRA = true` in that
        interface's network unit.
      '';
    };

    restrictForwarding = mkOption {
      type = types.bool;
      default = config.networking.nftables.enable;
      defaultText = lib.literalExpression "config.networking.nftables.enable";
      example = false;
      description = ''
        On controllers, forward only traffic that enters and leaves through a
        mesh interface. Turns on `networking.firewall.filterForward` (which
        NixOS supports with nftables only) and accepts mesh-to-mesh traffic
        in `networking.firewall.extraForwardRules`: any other forwarding on
        the machine (containers, other VPNs) then needs its own rules there.
      '';
    };
  };

  config = lib.mkMerge [
    {
      assertions = map (message: {
        assertion = false;
        inherit message;
      }) problems;
    }

    (lib.mkIf (cfg.instances != { } && problems == [ ]) {
      networking.wireguard.interfaces = lib.listToAttrs (
        map (member: lib.nameValuePair member.plan.interface (renderInterface member)) members
      );

      networking.hosts = lib.mkMerge (map hostsOf members);

      networking.firewall.allowedUDPPorts = lib.concatMap (
        member: lib.optionals member.instance.openFirewall member.plan.firewall.allowedUDPPorts
      ) members;

      # Defined here once for every instance of the machine, so two
      # controller instances do not define it twice.
      boot.kernel.sysctl = lib.mkIf forwards (
        {
          "net.ipv6.conf.all.forwarding" = 1;
        }
        // lib.listToAttrs (
          map (uplink: lib.nameValuePair "net.ipv6.conf.${uplink}.accept_ra" 2) cfg.uplinkInterfaces
        )
      );

      networking.firewall.filterForward = lib.mkIf (forwards && cfg.restrictForwarding) true;
      networking.firewall.extraForwardRules = lib.mkIf (forwards && cfg.restrictForwarding) (
        lib.concatMapStrings (interface: ''
          iifname "${interface}" oifname "${interface}" accept
        '') forwardingInterfaces
      );

      systemd.services = lib.listToAttrs (map renderAgent agentMembers);

      # For `clan-wireguard failover status`.
      environment.systemPackages = lib.mkIf (agentMembers != [ ]) [ cfg.package ];
    })

    (lib.mkIf (cfg.instances != { }) {
      # The module's postSetup routes need the script backend (see assertions).
      networking.wireguard.useNetworkd = lib.mkDefault false;
    })
  ];
}
