# Plans from an instance model (instance.nix): one per member, the shape of
# docs/plan.md. What every machine sees the same way (a peer as controllers
# see it, the hosts table, the failover order) is computed once per instance
# and shared, so a machine's plan costs time in proportion to the members.
let
  inherit (builtins)
    filter
    groupBy
    length
    map
    mapAttrs
    ;

  # WireGuard keepalive between controllers: a restarted controller has no
  # endpoints of its own, so the others must handshake with it at once.
  controllerKeepalive = 25;
in
model:
let
  inherit (model) controllers peers members;

  prefixOf = controller: controllers.${controller}.prefix.text;

  # A controller as its peers see it; keepalive is the viewer's.
  controllerEntry = mapAttrs (controller: member: {
    name = controller;
    role = "controller";
    publicKey = member.publicKey.text;
    allowedIPs = [ "${member.prefix.text}::/56" ];
    endpoint = if member.endpoint == null then null else member.endpoint.text;
    endpointHost = if member.endpoint == null then null else member.endpoint.host;
    endpointPort = if member.endpoint == null then null else member.endpoint.port;
    persistentKeepalive = null;
  }) controllers;

  # A peer as every controller sees it: its /96 in every controller's subnet.
  peerEntry = mapAttrs (peer: member: {
    name = peer;
    role = "peer";
    publicKey = member.publicKey.text;
    allowedIPs = map (
      controller: "${prefixOf controller}:${member.suffix.slash96}::/96"
    ) model.controllerNames;
    endpoint = null;
    endpointHost = null;
    endpointPort = null;
    persistentKeepalive = null;
  }) peers;

  # The address a member's host name points to: a controller's ::1, a peer's
  # address in its designated controller's subnet.
  hostAddress =
    machine:
    let
      member = members.${machine};
    in
    if member.role == "controller" then
      "${member.prefix.text}::1"
    else if member.designated.name == null then
      null
    else
      "${prefixOf member.designated.name}:${member.suffix.text}";

  hosts = mapAttrs (_: entries: map (entry: entry.name) entries) (
    groupBy (entry: entry.address) (
      filter (entry: entry.address != null) (
        map (machine: {
          name = "${machine}.${model.domain}";
          address = hostAddress machine;
        }) model.memberNames
      )
    )
  );

  # Every controller in the order a peer's failover agent picks a replacement;
  # the same order on every peer, so both directions of a flow agree.
  failoverControllers = map (controller: {
    name = controller;
    publicKey = controllers.${controller}.publicKey.text;
    address = "${prefixOf controller}::1";
    subnet = "${prefixOf controller}::/56";
  }) model.controllerNames;

  common = machine: member: {
    instance = model.name;
    inherit machine;
    inherit (member) role;
    interface = model.name;
    inherit (model) domain;
    network = model.network.text;
    mtu = member.settings.mtu;
    routes = [ model.network.text ];
    inherit hosts;
    privateKey = {
      generator = model.keysGenerator;
      file = "privatekey";
    };
  };

  controllerPlan =
    machine: member:
    common machine member
    // {
      listenPort = member.settings.port;
      addresses = [ "${member.prefix.text}::1/40" ];
      peers = map (
        other:
        if controllers ? ${other} then
          controllerEntry.${other} // { persistentKeepalive = controllerKeepalive; }
        else
          peerEntry.${other}
      ) (filter (other: other != machine) model.memberNames);
      forwarding = true;
      firewall.allowedUDPPorts = [ member.settings.port ];
      failover = null;
    };

  peerPlan =
    machine: member:
    common machine member
    // {
      listenPort = member.settings.port;
      addresses = map (
        controller: "${prefixOf controller}:${member.suffix.text}/56"
      ) model.controllerNames;
      peers = map (
        controller: controllerEntry.${controller} // { persistentKeepalive = member.keepalive; }
      ) model.controllerNames;
      forwarding = false;
      firewall.allowedUDPPorts =
        if member.settings.port == null then [ ] else [ member.settings.port ];
      failover =
        if length model.controllerNames < 2 then
          null
        else
          {
            designated = member.designated.name;
            controllers = failoverControllers;
          };
    };
in
mapAttrs (
  machine: member:
  if member.role == "controller" then controllerPlan machine member else peerPlan machine member
) members
