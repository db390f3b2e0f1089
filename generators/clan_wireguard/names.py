"""Instance and machine names: the rules they must follow, checked once.

Both kinds of name end up in host names (``<machine>.<instance>``), so both
must be DNS labels. Only lower case is accepted: clan's machine names are
lower case, and a name that differs from another only by case would give two
members the same host name. The instance name is also the name of the Linux
network interface, which the kernel limits to 15 bytes.
"""

import re

from clan_wireguard.errors import UserError

MAX_LABEL_LENGTH = 63
# IFNAMSIZ is 16 bytes including the terminating NUL.
MAX_INTERFACE_NAME_LENGTH = 15

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

_LABEL_RULE = (
    "lower-case letters a-z, digits and '-', not at the start or end, at most 63 characters"
)


def is_dns_label(name: str) -> bool:
    return _DNS_LABEL.fullmatch(name) is not None


def check_machine_name(name: str, option: str) -> str:
    """Return ``name`` if it is a valid machine name, else raise a UserError.

    ``option`` is how the user wrote the name (``--machine``, or a path in an
    inventory file), so the message points at what to change.
    """
    if name == "":
        raise UserError(f"{option} is empty: give the machine's name ({_LABEL_RULE})")
    if not is_dns_label(name):
        raise UserError(f"{option} {name!r}: not a valid DNS label ({_LABEL_RULE})")
    return name


def check_instance_name(name: str, option: str) -> str:
    """Return ``name`` if it is a valid instance name, else raise a UserError."""
    if name == "":
        raise UserError(f"{option} is empty: give the instance's name ({_LABEL_RULE})")
    if not is_dns_label(name):
        raise UserError(f"{option} {name!r}: not a valid DNS label ({_LABEL_RULE})")
    if len(name) > MAX_INTERFACE_NAME_LENGTH:
        raise UserError(
            f"{option} {name!r}: {len(name)} characters, but the instance name is also"
            f" the network interface name, which Linux limits to"
            f" {MAX_INTERFACE_NAME_LENGTH}; choose a shorter name"
        )
    return name
