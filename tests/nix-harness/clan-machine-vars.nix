# clan-core's vars options for one machine, public values read from the clan
# directory as clan's in-repo store does, secret files given the path shape
# of clan's sops store. Shared by ./eval-clan-service.nix (tests) and
# bench/eval-clan-services.nix.
{
  lib,
  clanCorePath,
  directory,
  pkgs,
  machineName,
}:
{
  options.clan.core.settings = {
    directory = lib.mkOption { type = lib.types.path; };
    machine.name = lib.mkOption { type = lib.types.str; };
  };
  options.clan.core.vars = lib.mkOption {
    default = { };
    type = lib.types.submodule {
      imports = [
        "${clanCorePath}/nixosModules/clanCore/vars/interface.nix"
        {
          inherit pkgs machineName;
        }
      ];
    };
  };
  imports = [ "${clanCorePath}/nixosModules/clanCore/vars/public/in_repo.nix" ];
  config = {
    clan.core.settings = {
      inherit directory;
      machine.name = machineName;
    };
    clan.core.vars.settings.fileModule = file: {
      path = lib.mkIf file.config.secret "/run/secrets/vars/${file.config.rel_dir}/${file.config.name}";
    };
    networking.hostName = machineName;
    # What clan's machine evaluation adds besides the services.
    _module.args.pkgs = pkgs;
  };
}
