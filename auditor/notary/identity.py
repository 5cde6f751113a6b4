"""Trusted identities: ``x509.subject: C=US, ST=WA, O=Notary`` matched against a signing cert.

The Notary Project trust policy pins signers by a *subset* of the leaf certificate's subject
DN: every attribute named in the identity must be present in the subject with the same value,
other subject attributes are ignored. An identity must name at least C, ST (or S) and O, may
not repeat an attribute or use multi-valued RDNs, and no two identities of one statement may
overlap (one being a subset of the other), because then a single certificate would satisfy both.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509
from cryptography.x509.oid import NameOID

WILDCARD = "*"
X509_SUBJECT = "x509.subject"
MANDATORY_ATTRIBUTES = ("C", "ST", "O")

# Attribute names as Go's pkix.Name.String() (notation's reference) prints them; other
# attributes are keyed by their dotted OID, exactly as Go prints them.
_OID_NAMES: Mapping[x509.ObjectIdentifier, str] = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.POSTAL_CODE: "POSTALCODE",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
}
_ALIASES = {"S": "ST"}
_HEX = frozenset("0123456789abcdefABCDEF")


class DNError(ValueError):
    """A distinguished name does not follow RFC 4514 or the Notary Project's identity rules."""


@dataclass(frozen=True)
class TrustedIdentity:
    """One ``trustedIdentities`` entry: ``*``, an ``x509.subject`` DN, or another prefix.

    Other prefixes are accepted (notation leaves them to plugins) but never match here.
    """

    raw: str
    kind: str  # "*", "x509.subject" or the unknown prefix
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_wildcard(self) -> bool:
        return self.kind == WILDCARD


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _canonical_type(name: str) -> str:
    upper = name.strip().upper()
    return _ALIASES.get(upper, upper)


def _split_unescaped(text: str, separators: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape_value(raw: str, dn: str) -> str:
    """RFC 4514 value: strip unescaped outer spaces, resolve ``\\X`` and ``\\HH`` escapes."""
    text = raw.lstrip(" ")
    # Trailing spaces are insignificant unless escaped ("\ ").
    while text.endswith(" ") and not (len(text) >= 2 and text[-2] == "\\"):
        text = text[:-1]
    if text.startswith("#"):
        raise DNError(
            f"distinguished name (DN) {_quote(dn)} uses a hex-encoded value, which is not supported"
        )
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            pair = text[i + 1 : i + 3]
            if len(pair) == 2 and all(c in _HEX for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            if i + 1 >= len(text):
                raise DNError(f"distinguished name (DN) {_quote(dn)} ends with a dangling escape")
            out.extend(text[i + 1].encode())
            i += 2
            continue
        if ch in '"+<>;=':
            raise DNError(
                f"distinguished name (DN) {_quote(dn)} has an unescaped {ch!r} in a value"
            )
        out.extend(ch.encode())
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DNError(
            f"distinguished name (DN) {_quote(dn)} has an escape that is not UTF-8"
        ) from exc


def parse_dn(dn: str, *, require_mandatory: bool = True) -> dict[str, str]:
    """Parse an RFC 4514 DN into ``{TYPE: value}``; raises DNError naming the DN and the rule."""
    if not dn.strip():
        raise DNError(f"distinguished name (DN) {_quote(dn)} is empty")
    result: dict[str, str] = {}
    for rdn in _split_unescaped(dn, ",;"):
        if not rdn.strip():
            raise DNError(
                f"distinguished name (DN) {_quote(dn)} is not valid, it must follow RFC 4514 "
                "(an RDN is empty)"
            )
        if len(_split_unescaped(rdn, "+")) > 1:
            raise DNError(
                f"distinguished name (DN) {_quote(dn)} has multi-valued RDN attributes, remove "
                "multi-valued RDN attributes as they are not supported"
            )
        pieces = _split_unescaped(rdn, "=")
        if len(pieces) < 2 or not pieces[0].strip():
            raise DNError(
                f"distinguished name (DN) {_quote(dn)} is not valid, it must follow RFC 4514 "
                f"(RDN {_quote(rdn.strip())} is not TYPE=value)"
            )
        attr_type = _canonical_type(pieces[0])
        if not all(c.isalnum() or c in ".-" for c in attr_type):
            raise DNError(
                f"distinguished name (DN) {_quote(dn)} has an invalid attribute type "
                f"{_quote(pieces[0].strip())}"
            )
        value = _unescape_value("=".join(pieces[1:]), dn)
        if attr_type in result:
            raise DNError(
                f"distinguished name (DN) {_quote(dn)} has duplicate RDN attribute for "
                f"{_quote(attr_type)}, DN can only have unique RDN attributes"
            )
        result[attr_type] = value
    if require_mandatory:
        for name in MANDATORY_ATTRIBUTES:
            if not result.get(name):
                raise DNError(
                    f"distinguished name (DN) {_quote(dn)} has no mandatory RDN attribute for "
                    f"{_quote(name)}, it must contain 'C', 'ST' or 'S', and 'O' RDN attributes "
                    "at a minimum"
                )
    return result


def parse_identity(raw: str) -> TrustedIdentity:
    """Parse one ``trustedIdentities`` entry; ValueError (notation's wording) if it is invalid."""
    if raw == "":
        raise ValueError("has an empty trusted identity")
    if raw == WILDCARD:
        return TrustedIdentity(raw=raw, kind=WILDCARD)
    prefix, sep, value = raw.partition(":")
    if not sep:
        raise ValueError(f"has trusted identity {_quote(raw)} missing separator")
    if prefix != X509_SUBJECT:
        return TrustedIdentity(raw=raw, kind=prefix)
    if value == "":
        raise ValueError(f"has trusted identity {_quote(raw)} without an identity value")
    try:
        attributes = parse_dn(value)
    except DNError as exc:
        raise ValueError(
            f"has trusted identity {_quote(raw)} with invalid identity value: {exc}"
        ) from exc
    return TrustedIdentity(raw=raw, kind=X509_SUBJECT, attributes=MappingProxyType(attributes))


def is_subset(smaller: Mapping[str, str], larger: Mapping[str, str]) -> bool:
    """Every attribute of ``smaller`` is in ``larger`` with the same value."""
    return all(larger.get(key) == value for key, value in smaller.items())


def find_overlap(identities: Sequence[TrustedIdentity]) -> tuple[str, str] | None:
    """The first pair of x509.subject identities where one is a subset of the other."""
    dns = [i for i in identities if i.kind == X509_SUBJECT]
    for a_index, a in enumerate(dns):
        for b_index, b in enumerate(dns):
            if a_index != b_index and is_subset(a.attributes, b.attributes):
                return a.raw, b.raw
    return None


def certificate_subject_map(cert: x509.Certificate) -> dict[str, str]:
    """The leaf subject as ``{TYPE: value}``; DNError if it has multi-valued or repeated RDNs.

    notation refuses to match such subjects, so a mismatch is reported instead of guessing.
    """
    result: dict[str, str] = {}
    subject = rfc4514(cert)
    for rdn in cert.subject.rdns:
        attrs = list(rdn)
        if len(attrs) > 1:
            raise DNError(f"certificate subject {_quote(subject)} has multi-valued RDN attributes")
        attr = attrs[0]
        name = _OID_NAMES.get(attr.oid, attr.oid.dotted_string)
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
        if name in result:
            raise DNError(
                f"certificate subject {_quote(subject)} has duplicate RDN attribute "
                f"for {_quote(name)}"
            )
        result[name] = value
    return result


# Go's pkix.Name.String() order (what notation prints): standard attributes in this order,
# any other attribute before them.
_GO_ORDER = (
    NameOID.SERIAL_NUMBER,
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.POSTAL_CODE,
    NameOID.STREET_ADDRESS,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.COUNTRY_NAME,
)


def _escape(value: str) -> str:
    out = []
    for index, ch in enumerate(value):
        first_or_last = index in (0, len(value) - 1)
        if ch in ',+"\\<>;' or (ch == " " and first_or_last) or (ch == "#" and index == 0):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def rfc4514(cert: x509.Certificate) -> str:
    """The subject as notation prints it, in Go's order (``CN=e2e,O=Notary,ST=WA,C=US``).

    Notation matches identities against this rendering, so we build it the same way.
    """

    def text(attr: x509.NameAttribute[str | bytes]) -> str:
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
        return _escape(value)

    attrs = list(cert.subject)
    extra = [a for a in attrs if a.oid not in _OID_NAMES]
    parts = [f"{a.oid.dotted_string}={text(a)}" for a in reversed(extra)]
    for oid in _GO_ORDER:
        values = [text(a) for a in attrs if a.oid == oid]
        if values:
            parts.append("+".join(f"{_OID_NAMES[oid]}={v}" for v in values))
    return ",".join(parts)


def match_identities(identities: Sequence[TrustedIdentity], leaf: x509.Certificate) -> str | None:
    """None if the leaf satisfies the identities, else a reason a person can act on."""
    if any(i.is_wildcard for i in identities):
        return None
    x509_identities = [i for i in identities if i.kind == X509_SUBJECT]
    if not x509_identities:
        return "no x509 trusted identities are configured in the trust policy"
    try:
        subject = certificate_subject_map(leaf)
    except DNError as exc:
        return f"error while parsing the certificate subject from the digital signature: {exc}"
    for identity in x509_identities:
        if is_subset(identity.attributes, subject):
            return None
    listed = ", ".join(_quote(i.raw) for i in x509_identities)
    return (
        "signing certificate from the digital signature does not match the X.509 trusted "
        f"identities [{listed}] (signer: {_quote(rfc4514(leaf))})"
    )
