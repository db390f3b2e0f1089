# Where public values come from: clan's vars directory or a plain attrset.
# A source is a function { machine, generator, file }: string or null.
let
  inherit (builtins)
    elemAt
    isAttrs
    isString
    mapAttrs
    match
    pathExists
    readDir
    readFile
    ;

  # The entries of a directory of the given type, or {} when it is not a directory.
  # Example: listingOf /vars/per-machine/ctrl1 "directory" => { wireguard-keys-vpn = "directory"; }
  listingOf = directory: type: if type == "directory" then readDir directory else { };

  # A public value with surrounding whitespace removed (`wg pubkey` ends its
  # output with a newline, and clan stores generator output byte for byte).
  # Example: trimValue "abc=\n" => "abc="
  trimValue =
    value:
    let
      trimmed =
        if isString value then match "[[:space:]]*([^[:space:]]*)[[:space:]]*" value else null;
    in
    if trimmed == null then value else elemAt trimmed 0;

  # Public values in clan's layout: <dir>/vars/per-machine/<machine>/<generator>/<file>/value.
  # `dir` is a path or an absolute path string. Directories are listed once and
  # only when a machine is asked for; lookups go through listings, so a machine
  # name can never reach outside the directory.
  # Example: readVarsDir ./. { machine = "ctrl1"; generator = "wireguard-keys-vpn"; file = "publickey"; } => "…="
  readVarsDir =
    dir:
    let
      root = "${toString dir}/vars/per-machine";
      machines = mapAttrs (
        machine: machineType:
        mapAttrs (
          generator: generatorType:
          mapAttrs (
            file: fileType:
            let
              fileDir = "${root}/${machine}/${generator}/${file}";
              type = (listingOf fileDir fileType).value or null;
            in
            if type == "regular" || type == "symlink" then
              trimValue (readFile "${fileDir}/value")
            else
              null
          ) (listingOf "${root}/${machine}/${generator}" generatorType)
        ) (listingOf "${root}/${machine}" machineType)
      ) (if pathExists root then readDir root else { });
    in
    {
      machine,
      generator,
      file,
    }:
    machines.${machine}.${generator}.${file} or null;

  # Public values from { <machine>.<generator>.<file> = "value"; }, for a mesh
  # without clan.
  # Example: publicValuesFromAttrs { m.g.f = "x"; } { machine = "m"; generator = "g"; file = "f"; } => "x"
  publicValuesFromAttrs =
    attrs:
    {
      machine,
      generator,
      file,
    }:
    let
      generators = if isAttrs attrs then attrs.${machine} or null else null;
      files = if isAttrs generators then generators.${generator} or null else null;
    in
    if isAttrs files then files.${file} or null else null;
in
{
  inherit publicValuesFromAttrs readVarsDir trimValue;
}
