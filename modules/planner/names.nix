# Names and the words of problem messages: which names the mesh accepts
# (interfaces, DNS labels), and how values and lists are shown to users.
let
  inherit (builtins)
    concatStringsSep
    elemAt
    genList
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isString
    length
    match
    stringLength
    toJSON
    ;

  # Whether a text is one DNS label: letters, digits and inner hyphens, 1–63 bytes.
  # Example: isDnsLabel "peer-1" => true; isDnsLabel "-peer" => false
  isDnsLabel =
    text:
    isString text && match "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?" text != null;

  # Whether a text is a host name suffix: DNS labels joined by dots, at most 253 bytes.
  # Example: isDomain "vpn.example.com" => true; isDomain "vpn..com" => false
  isDomain =
    text:
    isString text
    && stringLength text <= 253
    && match "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*" text
      != null;

  # Why an instance name cannot name a Linux interface and a DNS label, or null.
  # Linux limits interface names to 15 bytes (IFNAMSIZ minus the final NUL).
  # Example: instanceNameError "vpn" => null
  instanceNameError =
    name:
    if !isString name then
      "must be a string"
    else if stringLength name > 15 then
      "is ${toString (stringLength name)} bytes long, but the interface is named after it and Linux allows at most 15"
    else if name == "" || name == "." || name == ".." || match ".*[/[:space:]].*" name != null then
      "is not a valid interface name"
    else if !isDnsLabel name then
      "is not a DNS label (letters, digits and inner hyphens), but it is the default host name suffix"
    else
      null;

  # A value as a user wrote it, short enough for one line.
  # Example: showValue "ctrl9" => "\"ctrl9\""; showValue { } => "an attribute set"
  showValue =
    value:
    if isString value || isInt value || isFloat value || isBool value || value == null then
      toJSON value
    else if isList value then
      "a list"
    else if isAttrs value then
      "an attribute set"
    else if isFunction value then
      "a function"
    else
      "a path";

  # Quoted names joined for a sentence.
  # Example: quotedList [ "a" "b" "c" ] => "'a', 'b' and 'c'"
  quotedList =
    names:
    let
      quoted = map (name: "'${name}'") names;
      count = length quoted;
    in
    if count == 0 then
      "none"
    else if count == 1 then
      elemAt quoted 0
    else
      concatStringsSep ", " (genList (index: elemAt quoted index) (count - 1))
      + " and "
      + elemAt quoted (count - 1);

  # The first few names of a long list, which is enough for a message.
  # Example: firstOf [ "a" "b" ] => [ "a" "b" ]
  firstOf = names: if length names > 5 then genList (elemAt names) 5 else names;

  # Names joined by commas, the count in place of a long tail.
  # Example: shortList [ "a" "b" "c" "d" "e" "f" "g" ] => "a, b, c, d, e and 2 more"
  shortList =
    names:
    if length names > 5 then
      concatStringsSep ", " (firstOf names) + " and ${toString (length names - 5)} more"
    else
      concatStringsSep ", " names;

  # "machine 'a'" or "machines 'a' and 'b'", for the subject of a problem.
  # Example: machinesSubject [ "a" "b" ] => "machines 'a' and 'b'"
  machinesSubject =
    names: (if length names == 1 then "machine " else "machines ") + quotedList names;

  # The start of every problem about an instance.
  # Example: instanceSubject "vpn" => "wireguard instance 'vpn'"
  instanceSubject = name: "wireguard instance '${if isString name then name else showValue name}'";
in
{
  inherit
    firstOf
    shortList
    instanceNameError
    instanceSubject
    isDnsLabel
    isDomain
    machinesSubject
    quotedList
    showValue
    ;
}
