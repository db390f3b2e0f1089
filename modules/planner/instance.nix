# One instance read into a model: its members with their effective settings
# and parsed public values, each with what is wrong with it (if anything).
# Reading never fails: any value of any type yields a model, whose `problems`
# (see problems.nix) say what to fix and whose placeholders keep plans total.
let
  addresses = import ./addresses.nix;
  names = import ./names.nix;
  values = import ./values.nix;

  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    head
    isAttrs
    isInt
    isString
    length
    mapAttrs
    match
    removeAttrs
    stringLength
    substring
    ;

  roleNames = [
    "controller"
    "peer"
  ];

  # Keys of a role that clan's inventory may carry and the planner does not read.
  clanRoleKeys = [
    "tags"
    "extraModules"
  ];

  # An attrset, or {} in place of anything else (its problem is reported once, elsewhere).
  # Example: attrsOrEmpty 5 => { }
  attrsOrEmpty = value: if isAttrs value then value else { };

  # Check of a UDP port; `optional` also accepts null.
  # Example: portError false 0 => "must be an integer from 1 to 65535"
  portError =
    optional: value:
    if optional && value == null || isInt value && value >= 1 && value <= 65535 then
      null
    else
      "must be an integer from 1 to 65535${if optional then " or null" else ""}";

  domainRule = {
    default = null;
    error =
      value:
      if value == null || names.isDomain value then
        null
      else
        "must be null or a host name suffix such as vpn or vpn.example.com";
  };

  mtuRule = {
    default = null;
    # IPv6 needs 1280; the kernel drops IPv6 addresses from a smaller link.
    error =
      value:
      if value == null || isInt value && value >= 1280 && value <= 65535 then
        null
      else
        "must be null or an integer from 1280 (the IPv6 minimum) to 65535";
  };

  # Every setting of each role: its default and the check of a value (null: fine).
  settingRules = {
    controller = {
      endpoint = {
        # Required; a missing endpoint is its own problem.
        default = null;
        error =
          value:
          if value == null || isString value && addresses.formatEndpoint value 1 != null then
            null
          else
            "must be the host name, IPv4 address or IPv6 literal that peers dial, without a port (the port is the `port` setting)";
      };
      port = {
        default = 51820;
        error = portError false;
      };
      domain = domainRule;
      mtu = mtuRule;
    };
    peer = {
      controller = {
        default = null;
        error =
          value: if value == null || isString value then null else "must be a machine name or null";
      };
      port = {
        default = null;
        error = portError true;
      };
      keepalive = {
        default = 25;
        error =
          value:
          if value == null || isInt value && value >= 0 && value <= 65535 then
            null
          else
            "must be null or a number of seconds from 0 to 65535";
      };
      domain = domainRule;
      mtu = mtuRule;
    };
  };

  # A public value as the user stored it, shortened for a one-line message.
  # Example: shownValue "0:0:0:1\n" => "\"0:0:0:1\""
  shownValue =
    value:
    names.showValue (
      if isString value && stringLength value > 64 then substring 0 64 value + "…" else value
    );

  # Whether a text is a WireGuard public key: base64 of 32 bytes is 43
  # characters and one '='; the last character carries only 4 bits.
  # Example: isPublicKey "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" => true
  isPublicKey = text: match "[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=" text != null;
in
{
  name,
  instance,
  publicValue,
  # The inventory file and vars directory of a mesh without clan, for the
  # command that fixes a public value.
  inventory ? null,
  varsDir ? null,
}:
let
  subject = names.instanceSubject name;
  nameText = if isString name then name else names.showValue name;
  network = addresses.network nameText;
  keysGenerator = "wireguard-keys-${nameText}";
  networkGenerator = "wireguard-network-${nameText}";

  roles = attrsOrEmpty (attrsOrEmpty instance).roles or { };
  role = roleName: attrsOrEmpty roles.${roleName} or { };
  roleSettings = roleName: attrsOrEmpty (role roleName).settings or { };
  roleMachines = roleName: attrsOrEmpty (role roleName).machines or { };
  ownSettings =
    roleName: machine:
    attrsOrEmpty (attrsOrEmpty (roleMachines roleName).${machine}).settings or { };

  controllerMachines = roleMachines "controller";
  controllerNames = attrNames controllerMachines;
  # A machine in both roles is planned as a controller (and reported).
  peerMachines = removeAttrs (roleMachines "peer") controllerNames;
  peerNames = attrNames peerMachines;
  bothRoles = filter (machine: controllerMachines ? ${machine}) (attrNames (roleMachines "peer"));
  memberNames = attrNames (controllerMachines // peerMachines);

  # Where a setting of a machine is (or would be) written, for messages.
  # Example: optionPath "peer" "p1" "controller" => "roles.peer.machines.p1.settings.controller"
  optionPath =
    roleName: machine: key:
    if !(ownSettings roleName machine ? ${key}) && roleSettings roleName ? ${key} then
      "roles.${roleName}.settings.${key}"
    else
      "roles.${roleName}.machines.${machine}.settings.${key}";

  # The settings a machine runs with: defaults, overlaid by valid role-wide
  # values, overlaid by valid values of its own (invalid ones are reported).
  effectiveSettings =
    roleName: machine:
    let
      own = ownSettings roleName machine;
      shared = roleSettings roleName;
    in
    mapAttrs (
      key: rule:
      if own ? ${key} && rule.error own.${key} == null then
        own.${key}
      else if shared ? ${key} && rule.error shared.${key} == null then
        shared.${key}
      else
        rule.default
    ) settingRules.${roleName};

  # Problems of one settings attrset: unknown keys (typos must not pass
  # silently) and values of the wrong type or range.
  settingsProblems =
    {
      roleName,
      settings,
      where,
      pathOf,
    }:
    let
      rules = settingRules.${roleName};
      unknown = filter (key: !(rules ? ${key})) (attrNames settings);
      wrong = filter (key: rules ? ${key} && rules.${key}.error settings.${key} != null) (
        attrNames settings
      );
    in
    (
      if unknown == [ ] then
        [ ]
      else
        [
          "${where}: unknown setting${if length unknown > 1 then "s" else ""} ${
            concatStringsSep ", " (map pathOf unknown)
          }; the settings of a ${roleName} are ${names.quotedList (attrNames rules)}"
        ]
    )
    ++ map (
      key: "${where}: ${pathOf key} = ${names.showValue settings.${key}} ${rules.${key}.error settings.${key}}"
    ) wrong;

  # A public value trimmed of surrounding whitespace.
  readValue =
    machine: generator: file:
    values.trimValue (publicValue {
      inherit machine generator file;
    });

  # How to produce a public value again, with clan and without it.
  # Example: regenerateHint "p1" "wireguard-keys-vpn" false => "generate it: clan vars generate p1 --generator wireguard-keys-vpn (…)"
  regenerateHint =
    machine: generator: regenerate:
    "${if regenerate then "regenerate" else "generate"} it: clan vars generate ${machine} --generator ${generator}${
      if regenerate then " --regenerate" else ""
    } (without clan: clan-wireguard vars generate --inventory ${
      if inventory == null then "<inventory file>" else toString inventory
    } --vars-dir ${if varsDir == null then "<vars dir>" else toString varsDir}${
      if regenerate then " --regenerate ${machine}" else ""
    })";

  # The problem of one public value, or null.
  valueProblem =
    {
      machine,
      generator,
      file,
      raw,
      error,
    }:
    if error == null then
      null
    else if raw == null then
      "${subject}, machine '${machine}': public value ${generator}/${file} is missing; ${regenerateHint machine generator false}"
    else
      "${subject}, machine '${machine}': public value ${generator}/${file} ${shownValue raw} ${error}; ${regenerateHint machine generator true}";

  # A member's public key: { text; problem } (text is "" when unusable).
  publicKeyOf =
    machine:
    let
      raw = readValue machine keysGenerator "publickey";
      error =
        if raw == null then
          "is missing"
        else if !isString raw || !isPublicKey raw then
          "is not a WireGuard public key (44 characters of base64 ending in '=')"
        else
          null;
    in
    {
      text = if error == null then raw else "";
      problem = valueProblem {
        inherit machine raw error;
        generator = keysGenerator;
        file = "publickey";
      };
    };

  # A controller's /56 prefix: addresses.parsePrefix plus its problem.
  prefixOf =
    machine:
    let
      raw = readValue machine networkGenerator "prefix";
      parsed = addresses.parsePrefix network (if isString raw then raw else "");
    in
    parsed
    // {
      problem = valueProblem {
        inherit machine raw;
        generator = networkGenerator;
        file = "prefix";
        error = if raw == null then "is missing" else parsed.error;
      };
    };

  # A peer's suffix: addresses.parseSuffix plus its problem.
  suffixOf =
    machine:
    let
      raw = readValue machine networkGenerator "suffix";
      parsed = addresses.parseSuffix (if isString raw then raw else "");
    in
    parsed
    // {
      problem = valueProblem {
        inherit machine raw;
        generator = networkGenerator;
        file = "suffix";
        error = if raw == null then "is missing" else parsed.error;
      };
    };

  # A peer's designated controller, the one whose subnet holds its host name:
  # { name; problem }. Name is null only when there is no controller at all.
  designatedOf =
    machine: settings:
    let
      chosen = settings.controller;
      own = ownSettings "peer" machine;
      fallback = if controllerNames == [ ] then null else head controllerNames;
      choices = concatStringsSep ", " controllerNames;
    in
    if controllerNames == [ ] then
      {
        name = null;
        problem = null;
      }
    else if chosen != null && controllerMachines ? ${chosen} then
      {
        name = chosen;
        problem = null;
      }
    else if chosen != null then
      {
        name = fallback;
        # A bad role-wide value is reported once, for the role.
        problem =
          if own ? controller then
            "${subject}, machine '${machine}': roles.peer.machines.${machine}.settings.controller = ${names.showValue chosen} is not a controller of this instance; use one of: ${choices}"
          else
            null;
      }
    else if length controllerNames == 1 then
      {
        name = fallback;
        problem = null;
      }
    else
      {
        name = fallback;
        problem = "${subject}, machine '${machine}': the instance has ${toString (length controllerNames)} controllers, so roles.peer.machines.${machine}.settings.controller (or roles.peer.settings.controller) must name the one whose subnet holds this peer's host name; use one of: ${choices}";
      };

  # Everything about one member. Fields are computed only when asked for.
  member =
    roleName: machine:
    let
      settings = effectiveSettings roleName machine;
      where = "${subject}, machine '${machine}'";
    in
    {
      name = machine;
      role = roleName;
      inherit settings;
      domain = if settings.domain == null then nameText else settings.domain;
      publicKey = publicKeyOf machine;
      settingsProblems = settingsProblems {
        inherit roleName where;
        settings = ownSettings roleName machine;
        pathOf = key: "roles.${roleName}.machines.${machine}.settings.${key}";
      };
      option = optionPath roleName machine;
    }
    // (
      if roleName == "controller" then
        {
          prefix = prefixOf machine;
          # Whether any endpoint is written, valid or not (an invalid one has its own problem).
          endpointWritten =
            let
              own = ownSettings roleName machine;
              shared = roleSettings roleName;
            in
            (own.endpoint or shared.endpoint or null) != null;
          endpoint =
            if settings.endpoint == null then
              null
            else
              addresses.formatEndpoint settings.endpoint settings.port;
        }
      else
        {
          suffix = suffixOf machine;
          designated = designatedOf machine settings;
          # 0 turns keepalive off, as in wg(8).
          keepalive = if settings.keepalive == 0 then null else settings.keepalive;
        }
    );

  controllers = mapAttrs (machine: _: member "controller" machine) controllerMachines;
  peers = mapAttrs (machine: _: member "peer" machine) peerMachines;
  members = controllers // peers;
  domains = builtins.groupBy (machine: members.${machine}.domain) memberNames;

  # Problems of the instance's shape: types of roles, machines and settings.
  shapeProblems =
    let
      typeProblem =
        path: value: expected:
        if value == null || isAttrs value then
          [ ]
        else
          [ "${subject}: ${path} must be ${expected}, not ${names.showValue value}" ];
      roleShape =
        roleName:
        let
          raw = roles.${roleName} or null;
          declared = attrsOrEmpty raw;
          unknownKeys = filter (key: !(elem key ([ "settings" "machines" ] ++ clanRoleKeys))) (
            attrNames declared
          );
          machineShape =
            machine:
            let
              entry = (roleMachines roleName).${machine};
              path = "roles.${roleName}.machines.${machine}";
              unknownEntryKeys = filter (key: key != "settings" && key != "extraModules") (
                attrNames (attrsOrEmpty entry)
              );
            in
            typeProblem path entry "an attribute set such as { settings = { }; }"
            ++ typeProblem "${path}.settings" (attrsOrEmpty entry).settings or null "an attribute set"
            ++ map (
              key: "${subject}, machine '${machine}': unknown key ${path}.${key}; a machine takes `settings`"
            ) unknownEntryKeys;
        in
        typeProblem "roles.${roleName}" raw "an attribute set with `machines` and `settings`"
        ++ typeProblem "roles.${roleName}.machines" declared.machines or null
          "an attribute set of machine names"
        ++ typeProblem "roles.${roleName}.settings" declared.settings or null "an attribute set"
        ++ map (
          key: "${subject}: unknown key roles.${roleName}.${key}; a role takes `machines` and `settings`"
        ) unknownKeys
        ++ builtins.concatMap machineShape (attrNames (roleMachines roleName));
      unknownRoles = filter (roleName: !(elem roleName roleNames)) (attrNames roles);
    in
    (
      if isAttrs instance then
        typeProblem "roles" instance.roles or null "an attribute set with `controller` and `peer`"
      else
        [ "${subject}: the instance must be an attribute set with `roles`, not ${names.showValue instance}" ]
    )
    ++ map (
      roleName: "${subject}: unknown role roles.${roleName}; the roles are 'controller' and 'peer'"
    ) unknownRoles
    ++ builtins.concatMap roleShape roleNames;

  # Problems of role-wide settings, reported once for the role.
  roleSettingsProblems = builtins.concatMap (
    roleName:
    let
      shared = roleSettings roleName;
      chosen = shared.controller or null;
      roleMembers = if roleName == "controller" then controllerNames else peerNames;
      where = "${subject}, role '${roleName}' (${
        if roleMembers == [ ] then "no machines" else "machines ${names.shortList roleMembers}"
      })";
    in
    settingsProblems {
      inherit roleName where;
      settings = shared;
      pathOf = key: "roles.${roleName}.settings.${key}";
    }
    ++ (
      if
        roleName == "peer"
        && isString chosen
        && controllerNames != [ ]
        && !(controllerMachines ? ${chosen})
      then
        [
          "${where}: roles.peer.settings.controller = ${names.showValue chosen} is not a controller of this instance; use one of: ${concatStringsSep ", " controllerNames}"
        ]
      else
        [ ]
    )
  ) roleNames;
in
{
  inherit
    bothRoles
    controllerNames
    controllers
    inventory
    keysGenerator
    memberNames
    members
    network
    networkGenerator
    peerNames
    peers
    regenerateHint
    roleSettingsProblems
    shapeProblems
    subject
    ;
  name = nameText;
  nameError = names.instanceNameError name;
  # Every member's effective domain, grouped; one group when members agree.
  inherit domains;
  # The host name suffix of the instance (the instance name while members disagree).
  domain =
    let
      agreed = attrNames domains;
    in
    if length agreed == 1 then head agreed else nameText;
}
