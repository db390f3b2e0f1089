# The NixOS options the clan-wireguard module writes, declared without
# nixpkgs so the module can be evaluated with nixpkgs' lib alone.
#
# Types follow nixpkgs where they decide whether a definition is accepted
# (WireGuard interfaces and peers, /etc/hosts, the firewall); everything else
# is declared loosely. `boot.kernel.sysctl` rejects a key defined twice, as
# NixOS does, so two instances cannot both define the forwarding switch.
{ lib, config, ... }:
let
  inherit (lib) mkOption types;

  lines = types.coercedTo (types.listOf types.str) (lib.concatStringsSep "\n") types.lines;

  peer =
    { config, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = config.publicKey;
        };
        publicKey = mkOption { type = types.singleLineStr; };
        presharedKeyFile = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        allowedIPs = mkOption { type = types.listOf types.str; };
        endpoint = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
        persistentKeepalive = mkOption {
          type = types.nullOr types.int;
          default = null;
        };
        dynamicEndpointRefreshSeconds = mkOption {
          type = types.nullOr types.int;
          default = null;
        };
        dynamicEndpointRefreshRestartSeconds = mkOption {
          type = types.nullOr types.ints.unsigned;
          default = null;
        };
      };
    };

  interface = {
    options = {
      ips = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      privateKey = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
      privateKeyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
      listenPort = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
      mtu = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
      allowedIPsAsRoutes = mkOption {
        type = types.bool;
        default = true;
      };
      dynamicEndpointRefreshSeconds = mkOption {
        type = types.int;
        default = 0;
      };
      preSetup = mkOption {
        type = lines;
        default = "";
      };
      postSetup = mkOption {
        type = lines;
        default = "";
      };
      preShutdown = mkOption {
        type = lines;
        default = "";
      };
      postShutdown = mkOption {
        type = lines;
        default = "";
      };
      peers = mkOption {
        type = types.listOf (types.submodule peer);
        default = [ ];
      };
    };
  };

  portList = mkOption {
    type = types.listOf types.port;
    default = [ ];
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    networking.hostName = mkOption {
      type = types.str;
      default = "nixos";
    };
    networking.hosts = mkOption {
      type = types.attrsOf (types.listOf types.str);
      default = { };
    };

    networking.wireguard.enable = mkOption {
      type = types.bool;
      default = config.networking.wireguard.interfaces != { };
    };
    networking.wireguard.useNetworkd = mkOption {
      type = types.bool;
      default = false;
    };
    networking.wireguard.interfaces = mkOption {
      type = types.attrsOf (types.submodule interface);
      default = { };
    };

    networking.nftables.enable = mkOption {
      type = types.bool;
      default = false;
    };
    networking.firewall = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      allowedUDPPorts = portList;
      allowedTCPPorts = portList;
      trustedInterfaces = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      filterForward = mkOption {
        type = types.bool;
        default = false;
      };
      extraForwardRules = mkOption {
        type = types.lines;
        default = "";
      };
    };

    boot.kernel.sysctl = mkOption {
      type = types.attrsOf (
        types.uniq (
          types.oneOf [
            types.bool
            types.int
            types.str
          ]
        )
      );
      default = { };
    };

    systemd.services = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
      default = { };
    };

    environment.etc = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
      default = { };
    };

    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
  };
}
