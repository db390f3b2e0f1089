# The planner from the command line: inventory files (one instance each) and a
# vars directory in, plans and problems out, as JSON.
#
#   nix-instantiate --eval --strict --json modules/planner/from-files.nix \
#     --argstr inventories '["/abs/vpn.json"]' --argstr varsDir /abs/clan \
#     --argstr machines '["peer1"]'   # or 'null' for every machine
#
# Output: { problems = [ … ]; machines.<machine>.<instance> = plan; }, with
# `machines` empty while there are problems.
{
  inventories,
  varsDir,
  machines ? "null",
}:
let
  planner = import ./default.nix;
  names = import ./names.nix;

  inherit (builtins)
    all
    attrNames
    concatMap
    filter
    fromJSON
    groupBy
    isAttrs
    isList
    isString
    length
    listToAttrs
    map
    pathExists
    readFile
    substring
    ;

  # The arguments are JSON written by the caller; their types are still checked.
  inventoryPaths = fromJSON inventories;
  pathsProblem =
    if isList inventoryPaths && all isString inventoryPaths then
      [ ]
    else
      [ "inventories must be a JSON list of inventory file paths, not ${names.showValue inventoryPaths}" ];
  paths = if pathsProblem == [ ] then inventoryPaths else [ ];

  # One inventory file: { file; data; problem }.
  readInventory =
    file:
    let
      absolute = substring 0 1 file == "/";
      exists = absolute && pathExists file;
    in
    {
      inherit file;
      data = if exists then fromJSON (readFile file) else null;
      problem =
        if !absolute then
          "inventory file ${file}: not an absolute path"
        else if !exists then
          "inventory file ${file}: no such file"
        else
          null;
    };

  inventoriesRead = map readInventory paths;
  readable = filter (inventory: inventory.problem == null) inventoriesRead;
  nameOf = inventory: if isAttrs inventory.data then inventory.data.instanceName or null else null;
  unnamed = filter (inventory: !(isString (nameOf inventory))) readable;
  named = groupBy nameOf (filter (inventory: isString (nameOf inventory)) readable);

  fileProblems =
    pathsProblem
    ++ map (inventory: inventory.problem) (
      filter (inventory: inventory.problem != null) inventoriesRead
    )
    ++ map (
      inventory:
      if isAttrs inventory.data then
        "inventory file ${inventory.file}: \"instanceName\" must be the instance's name (a string), not ${
          names.showValue (inventory.data.instanceName or null)
        }"
      else
        "inventory file ${inventory.file}: must be a JSON object with \"instanceName\" and \"roles\", not ${names.showValue inventory.data}"
    ) unnamed
    ++ map (
      name:
      "wireguard instance '${name}': defined by several inventory files (${
        builtins.concatStringsSep ", " (map (inventory: inventory.file) named.${name})
      }); give each instance its own name"
    ) (filter (name: length named.${name} > 1) (attrNames named));

  byMachine = planner.planInstancesByMachine {
    instances = builtins.mapAttrs (_: files: (builtins.head files).data) named;
    inventories = builtins.mapAttrs (_: files: (builtins.head files).file) named;
    inherit varsDir;
    publicValue = planner.readVarsDir varsDir;
  };

  requested = fromJSON machines;
  requestedProblem =
    if requested == null || isList requested && all isString requested then
      [ ]
    else
      [ "machines must be a JSON list of machine names or null, not ${names.showValue requested}" ];
  selected =
    if requested == null || requestedProblem != [ ] then
      attrNames byMachine.machines
    else
      attrNames (listToAttrs (map (machine: {
        name = machine;
        value = null;
      }) requested));
  unknownMachines = filter (machine: !(byMachine.machines ? ${machine})) selected;

  problems =
    fileProblems
    ++ requestedProblem
    ++ byMachine.instanceProblems
    ++ map (
      machine:
      "machine '${machine}': not a member of any of the wireguard instances ${names.quotedList (attrNames named)}; add it to roles.controller.machines or roles.peer.machines of one"
    ) unknownMachines
    ++ concatMap (machine: byMachine.machineProblems.${machine} or [ ]) selected;
in
{
  inherit problems;
  machines =
    if problems == [ ] then
      listToAttrs (
        map (machine: {
          name = machine;
          value = byMachine.machines.${machine};
        }) selected
      )
    else
      { };
}
