# The planner: instances and the public values of their members in, one plan
# per machine and instance out, with every problem found on the way. Builtins
# only, so it evaluates with any Nix from 2.8 on, with or without nixpkgs.
# The shape of a plan is documented in docs/plan.md; the planner in docs/planner.md.
let
  addresses = import ./addresses.nix;
  names = import ./names.nix;
  values = import ./values.nix;
  readInstance = import ./instance.nix;
  planMembers = import ./plans.nix;
  problems = import ./problems.nix;

  inherit (builtins)
    attrNames
    attrValues
    concatLists
    concatMap
    groupBy
    isAttrs
    listToAttrs
    mapAttrs
    ;

  # Plans and problems of one instance.
  # Example: (planInstance { name = "vpn"; instance = { roles = …; }; publicValue = readVarsDir ./.; }).machines.peer1.addresses
  planInstance =
    {
      name,
      instance,
      publicValue,
      inventory ? null,
      varsDir ? null,
    }:
    let
      model = readInstance {
        inherit
          name
          instance
          publicValue
          inventory
          varsDir
          ;
      };
    in
    {
      problems = problems.instanceProblems model;
      machines = planMembers model;
    };

  # Plans of several instances by machine, with the problems of each instance
  # and of each machine kept apart (so a caller can pick some machines).
  # `inventories` maps instance names to the files they came from and
  # `varsDir` is where their vars are, both only for messages.
  # Example: (planInstancesByMachine { instances = { vpn = …; }; publicValue = …; }).machineProblems.ctrl1 => [ ]
  planInstancesByMachine =
    {
      instances,
      publicValue,
      inventories ? { },
      varsDir ? null,
    }:
    let
      declared = if isAttrs instances then instances else { };
      planned = mapAttrs (
        name: instance:
        let
          model = readInstance {
            inherit
              name
              instance
              publicValue
              varsDir
              ;
            inventory = inventories.${name} or null;
          };
        in
        {
          inherit model;
          problems = problems.instanceProblems model;
          machines = planMembers model;
        }
      ) declared;
      memberships = concatMap (
        name: map (machine: { inherit machine name; }) planned.${name}.model.memberNames
      ) (attrNames planned);
      machines = mapAttrs (
        machine: entries:
        listToAttrs (
          map (entry: {
            inherit (entry) name;
            value = planned.${entry.name}.machines.${machine};
          }) entries
        )
      ) (groupBy (entry: entry.machine) memberships);
    in
    {
      instanceProblems =
        (
          if isAttrs instances then
            [ ]
          else
            [ "wireguard instances must be an attribute set of instances, not ${names.showValue instances}" ]
        )
        ++ concatMap (name: planned.${name}.problems) (attrNames planned);
      machineProblems = mapAttrs (
        machine: plans: problems.machineProblems { inherit machine plans; }
      ) machines;
      inherit machines;
    };

  # Plans of every machine in every instance, and every problem.
  # Example: (planInstances { instances = { vpn = …; }; publicValue = publicValuesFromAttrs { … }; }).machines.peer1.vpn.addresses
  planInstances =
    { instances, publicValue }:
    let
      byMachine = planInstancesByMachine { inherit instances publicValue; };
    in
    {
      problems = byMachine.instanceProblems ++ concatLists (attrValues byMachine.machineProblems);
      inherit (byMachine) machines;
    };
in
{
  inherit planInstance planInstances planInstancesByMachine;
  inherit (problems) machineProblems;
  inherit (values) publicValuesFromAttrs readVarsDir;
  inherit (addresses)
    formatEndpoint
    hextetsText
    network
    parseHextet
    parsePrefix
    parseSuffix
    ;
  inherit (names) instanceNameError isDnsLabel isDomain;
}
