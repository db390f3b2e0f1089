# What is wrong with an instance, or with the instances of one machine: one
# line per problem, naming the instance, the machine(s) and what to change.
# Collisions are found by grouping (builtins.groupBy), never by comparing
# every pair, so checking an instance costs time in proportion to its members.
let
  names = import ./names.nix;

  inherit (builtins)
    attrNames
    attrValues
    concatLists
    concatMap
    concatStringsSep
    filter
    groupBy
    head
    isAttrs
    isInt
    isList
    isString
    length
    tail
    ;

  # The groups of more than one member: the collisions.
  # Example: collisions (x: x) [ "a" "b" "a" ] => [ [ "a" "a" ] ]
  collisions = key: items: filter (group: length group > 1) (attrValues (groupBy key items));

  # Problems of one instance model (see instance.nix).
  instanceProblems =
    model:
    let
      inherit (model) subject members;
      controllerCount = length model.controllerNames;

      nameProblems =
        if model.nameError == null then
          [ ]
        else
          [
            "${subject}: the instance name ${model.nameError}; rename the instance (it names the interface and the default domain)"
          ];

      noController =
        if controllerCount == 0 && model.shapeProblems == [ ] then
          [
            "${subject}: no controller; add a machine with a public endpoint to roles.controller.machines, e.g. roles.controller.machines.server1.settings.endpoint = \"vpn.example.com\""
          ]
        else
          [ ];

      bothRoles = map (
        machine:
        "${subject}, machine '${machine}': it is in both roles.controller.machines and roles.peer.machines; keep it in one role (a controller already reaches every peer)"
      ) model.bothRoles;

      memberProblems =
        machine:
        let
          member = members.${machine};
          where = "${subject}, machine '${machine}'";
          isController = member.role == "controller";
          endpointProblems =
            if isController && !member.endpointWritten then
              [
                "${where}: no endpoint; set ${member.option "endpoint"} to the host name or address peers dial (e.g. \"vpn.example.com\")"
              ]
            else
              [ ];
        in
        (
          if names.isDnsLabel machine then
            [ ]
          else
            [
              "${where}: the machine name is not a DNS label (letters, digits and inner hyphens), but it is its host name ${machine}.${model.domain}; rename the machine"
            ]
        )
        ++ member.settingsProblems
        ++ endpointProblems
        ++ filter isString (
          [ member.publicKey.problem ]
          ++ (
            if isController then
              [ member.prefix.problem ]
            else
              [
                member.designated.problem
                member.suffix.problem
              ]
          )
        );

      domainProblems =
        let
          groups = model.domains;
          domains = attrNames groups;
          # The largest group is probably right; the others are named first.
          largest = builtins.foldl' (
            best: domain: if length groups.${domain} > length groups.${best} then domain else best
          ) (head domains) domains;
          others = concatMap (domain: groups.${domain}) (
            filter (domain: domain != largest) domains
          );
          domainsText = concatStringsSep "; " (
            map (domain: "'${domain}' on ${names.shortList groups.${domain}}") domains
          );
        in
        if length domains > 1 then
          [
            "${subject}, ${names.machinesSubject (names.firstOf others)}: members disagree on the host name suffix (${domainsText}); set the same domain for every member, e.g. once in roles.controller.settings.domain and roles.peer.settings.domain"
          ]
        else
          [ ];

      # Members whose value of `field` is usable, for collision checks.
      usable =
        machineNames: field:
        filter (machine: members.${machine}.${field}.problem == null) machineNames;

      # How to move the members after the first of a collision elsewhere.
      regenerateOthers =
        group: generator:
        concatStringsSep "; " (
          map (machine: model.regenerateHint machine generator true) (tail group)
        );

      subnetCollisions = map (
        group:
        "${subject}, ${names.machinesSubject group}: these controllers have the same subnet ${members.${head group}.prefix.text}::/56 (${model.networkGenerator}/prefix), so peers cannot tell them apart; ${regenerateOthers group model.networkGenerator}"
      ) (
        collisions (machine: members.${machine}.prefix.text) (usable model.controllerNames "prefix")
      );

      # Controllers accept each peer's /96, so the suffix's first 32 bits must
      # differ between peers, or one peer could send as the other.
      suffixCollisions = map (
        group:
        "${subject}, ${names.machinesSubject group}: these peers' suffixes share their first 32 bits (${members.${head group}.suffix.slash96}, ${model.networkGenerator}/suffix), so controllers route one peer's /96 to the other; ${regenerateOthers group model.networkGenerator}"
      ) (collisions (machine: members.${machine}.suffix.slash96) (usable model.peerNames "suffix"));

      keyCollisions = map (
        group:
        "${subject}, ${names.machinesSubject group}: these machines have the same public key (${model.keysGenerator}/publickey), and WireGuard tells peers apart by key; ${regenerateOthers group model.keysGenerator}"
      ) (
        collisions (machine: members.${machine}.publicKey.text) (usable model.memberNames "publicKey")
      );
    in
    model.shapeProblems
    ++ nameProblems
    ++ noController
    ++ model.roleSettingsProblems
    ++ bothRoles
    ++ concatMap memberProblems model.memberNames
    ++ domainProblems
    ++ subnetCollisions
    ++ suffixCollisions
    ++ keyCollisions;

  # Problems between the instances of one machine: two interfaces cannot
  # share a UDP port or a name. `plans` is { <instance> = plan; } or a list.
  # Example: machineProblems { machine = "m"; plans = [ a b ]; } => [ "machine 'm': wireguard instances 'a' and 'b' both listen on UDP port 51820; …" ]
  machineProblems =
    { machine, plans }:
    let
      planList = filter isAttrs (
        if isList plans then
          plans
        else if isAttrs plans then
          attrValues plans
        else
          [ ]
      );
      instancesOf = group: names.quotedList (map (plan: plan.instance) group);
      # "both" for two instances, "all" for more.
      allOf = group: if length group == 2 then "both" else "all";
      withPort = filter (plan: isInt (plan.listenPort or null)) planList;
      named = filter (plan: isString (plan.interface or null)) planList;
      portClashes = map (
        group:
        "machine '${machine}': wireguard instances ${instancesOf group} ${allOf group} listen on UDP port ${toString (head group).listenPort}; give each its own: ${
          concatStringsSep "; " (
            map (
              plan: "set roles.${plan.role}.machines.${machine}.settings.port in instance '${plan.instance}'"
            ) (tail group)
          )
        }"
      ) (collisions (plan: toString plan.listenPort) withPort);
      interfaceClashes = map (
        group:
        "machine '${machine}': wireguard instances ${instancesOf group} ${allOf group} use the interface name '${(head group).interface}'; rename one of the instances"
      ) (collisions (plan: plan.interface) named);
    in
    portClashes ++ interfaceClashes;
in
{
  inherit collisions instanceProblems machineProblems;
}
