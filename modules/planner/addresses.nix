# IPv6 text for the mesh, with builtins only: hextets, the instance's /40,
# controller prefixes, peer suffixes, and endpoints as WireGuard wants them.
# Every function here is total: bad input gives null, never an evaluation error.
let
  inherit (builtins)
    all
    bitAnd
    concatStringsSep
    elemAt
    filter
    foldl'
    genList
    hashString
    isInt
    isString
    length
    match
    split
    stringLength
    substring
    ;

  hexDigits = [
    "0"
    "1"
    "2"
    "3"
    "4"
    "5"
    "6"
    "7"
    "8"
    "9"
    "a"
    "b"
    "c"
    "d"
    "e"
    "f"
  ];

  # Value of each hex digit, both cases.
  hexDigitValues = builtins.listToAttrs (
    genList (value: {
      name = elemAt hexDigits value;
      inherit value;
    }) 16
    ++ genList (value: {
      name = elemAt [ "A" "B" "C" "D" "E" "F" ] value;
      value = value + 10;
    }) 6
  );

  # The characters of a string.
  # Example: characters "fd5" => [ "f" "d" "5" ]
  characters = text: genList (index: substring index 1 text) (stringLength text);

  # A hextet's value from 1 to 4 hex digits, either case; null otherwise.
  # Example: parseHextet "00Ab" => 171
  parseHextet =
    text:
    if isString text && match "[0-9a-fA-F]{1,4}" text != null then
      foldl' (value: digit: value * 16 + hexDigitValues.${digit}) 0 (characters text)
    else
      null;

  # Lower-case hex text of a non-negative integer, without leading zeros.
  # Example: toHex 63232 => "f700"
  toHex =
    number:
    let
      rest = number / 16;
      digit = elemAt hexDigits (number - rest * 16);
    in
    if rest == 0 then digit else toHex rest + digit;

  # Canonical text of a list of hextets: lower case, no leading zeros, no "::".
  # Example: hextetsText [ 64849 6593 59 63232 ] => "fd51:19c1:3b:f700"
  hextetsText = hextets: concatStringsSep ":" (map toHex hextets);

  # Hextets of "a:b:c" (no "::"), or null when one of them is not 1–4 hex digits.
  # Example: colonSeparated "0fd51:1" => null; colonSeparated "fd51:1" => [ 64849 1 ]
  colonSeparated =
    text:
    let
      parsed = map parseHextet (filter isString (split ":" text));
    in
    if all isInt parsed then parsed else null;

  # Hextets of a group of `count` hextets written with an optional "::" (standing
  # for one or more zero hextets); when `padEnd`, fewer hextets without "::" are
  # completed with zeros at the end (clan-core's allocator drops trailing zero
  # hextets of a prefix). Null for anything else.
  # Example: parseGroup { count = 4; padEnd = true; } "fd51:19c1:3b" => [ 64849 6593 59 0 ]
  parseGroup =
    { count, padEnd }:
    text:
    let
      halves = split "::" text;
      zeros = number: genList (_: 0) number;
      half = part: if part == "" then [ ] else colonSeparated part;
      left = half (elemAt halves 0);
      right = half (elemAt halves 2);
      plain = colonSeparated text;
    in
    if !isString text || text == "" then
      null
    else if length halves == 3 then
      if left == null || right == null || length left + length right >= count then
        null
      else
        left ++ zeros (count - length left - length right) ++ right
    else if length halves > 3 || plain == null then
      null
    else if length plain == count then
      plain
    else if padEnd && length plain < count then
      plain ++ zeros (count - length plain)
    else
      null;

  # The instance's /40 from its name, as clan-core derives it: "fd" followed by
  # the first 24 bits of sha256(name); the fifth byte is always zero.
  # Example: (network "vpn").text => "fdeb:f20c::/40"
  network =
    instanceName:
    let
      hash = hashString "sha256" instanceName;
      hextets = [
        (parseHextet ("fd" + substring 0 2 hash))
        (parseHextet (substring 2 4 hash))
      ];
    in
    {
      inherit hextets;
      # A zero second hextet is left to "::", as ipaddress and ip(8) write it.
      text =
        if elemAt hextets 1 == 0 then
          "${hextetsText [ (elemAt hextets 0) ]}::/40"
        else
          "${hextetsText hextets}::/40";
    };

  # A controller's /56 from its public `prefix` value, checked against the /40.
  # Example: (parsePrefix (network "vpn") "FDEB:f20c:003b").text => "fdeb:f20c:3b:0"
  # Result: { text; hextets; error } with error null, or a phrase saying what is wrong.
  parsePrefix =
    instanceNetwork: value:
    let
      hextets = parseGroup {
        count = 4;
        padEnd = true;
      } value;
      inside =
        elemAt hextets 0 == elemAt instanceNetwork.hextets 0
        && elemAt hextets 1 == elemAt instanceNetwork.hextets 1
        && bitAnd (elemAt hextets 2) 65280 == 0;
      error =
        if hextets == null then
          "is not an IPv6 /56 prefix of up to four hextets like fd51:19c1:3b:f700"
        else if !inside then
          "is not inside the instance's network ${instanceNetwork.text} (was it generated for another instance?)"
        else if bitAnd (elemAt hextets 3) 255 != 0 then
          "is not on a /56 boundary (it must end in 00)"
        else
          null;
    in
    {
      inherit error;
      hextets = if error == null then hextets else instanceNetwork.hextets ++ [ 0 0 ];
      text = hextetsText (if error == null then hextets else instanceNetwork.hextets ++ [ 0 0 ]);
    };

  # A peer's 64-bit host part from its public `suffix` value.
  # Example: (parseSuffix "8750:A09B:0000:1").text => "8750:a09b:0:1"
  # Result: { text; hextets; slash96; error }; slash96 is the text of the first
  # two hextets, which tell peers apart in controllers' allowed IPs.
  parseSuffix =
    value:
    let
      # The spec writes suffixes with a leading colon (":8750:a09b:0:1").
      withoutColon =
        if isString value && match ":[^:].*" value != null then
          substring 1 (stringLength value) value
        else
          value;
      hextets = parseGroup {
        count = 4;
        padEnd = false;
      } withoutColon;
      error =
        if hextets == null then
          "is not four hextets like 8750:a09b:0:1"
        else if elemAt hextets 0 == 0 && elemAt hextets 1 == 0 then
          "starts with 32 zero bits, which is where controller addresses (::1) live"
        else
          null;
      usable = if error == null then hextets else [ 0 0 0 0 ];
    in
    {
      inherit error;
      hextets = usable;
      text = hextetsText usable;
      slash96 = hextetsText [
        (elemAt usable 0)
        (elemAt usable 1)
      ];
    };

  # How an endpoint setting is dialled: IPv6 literals are bracketed, host names
  # and IPv4 addresses are kept as they are. Null when the text is not an endpoint.
  # Example: formatEndpoint "[2001:db8::1]" 51820 => { host = "2001:db8::1"; port = 51820; text = "[2001:db8::1]:51820"; }
  formatEndpoint =
    endpoint: port:
    let
      bracketed = match "\\[([^]]*)]" endpoint;
      host = if bracketed != null then elemAt bracketed 0 else endpoint;
      # A zone ("%eth0") is allowed after a link-local literal.
      withoutZone = elemAt (match "([^%]*)(%[A-Za-z0-9_.-]+)?" host) 0;
      # The last 32 bits may be written as IPv4 ("::ffff:192.0.2.1").
      ipv4Tail = match "(.*:)[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}" withoutZone;
      isIPv6 =
        match "([^%]*)(%[A-Za-z0-9_.-]+)?" host != null
        &&
          parseGroup {
            count = 8;
            padEnd = false;
          } (if ipv4Tail != null then elemAt ipv4Tail 0 + "0:0" else withoutZone) != null;
      isName = match "[A-Za-z0-9_.-]+" host != null;
    in
    if !isString endpoint || !(isIPv6 || bracketed == null && isName) then
      null
    else
      {
        inherit host port;
        text = if isIPv6 then "[${host}]:${toString port}" else "${host}:${toString port}";
      };
in
{
  inherit
    formatEndpoint
    hextetsText
    network
    parseGroup
    parseHextet
    parsePrefix
    parseSuffix
    toHex
    ;
}
