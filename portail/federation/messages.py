"""SAML messages are bounded before pysaml2 reads them.

pysaml2 inflates an HTTP-Redirect message whole (`zlib.decompress`) and parses it: a URL of a few
kilobytes can inflate ~1,000-fold (a « deflate bomb »), and an HTTP-POST message is as large as
the body allows. Both bindings are reachable by anyone (the IdP's SSO and logout endpoints, the
ÉduConnect SP's SLO endpoint), so the size of what will be parsed is checked first, by inflating at
most one byte more than the limit (OWASP ASVS 5.0 V5.2.1-2: size limits on what is decompressed;
V13.1: limits on resource use). Real messages are a few kilobytes; metadata-sized limits suffice.
"""

import base64
import binascii
import zlib

from saml2 import BINDING_HTTP_REDIRECT

# A signed AuthnRequest or LogoutRequest is 2–8 KB; a signed and encrypted Response from an
# identity provider 10–40 KB. 256 KiB leaves room for the largest certificates and attributes.
MAX_MESSAGE_BYTES = 256 * 1024


class MessageTooLarge(ValueError):
    """The message, once decoded (and inflated), is larger than MAX_MESSAGE_BYTES."""


def check_size(message: str, binding: str) -> None:
    """Raise MessageTooLarge if the decoded message exceeds the limit; inflate at most limit + 1.

    A message that is not base64 or not DEFLATE passes: pysaml2 refuses it as illegible next.
    """
    # Base64 of the limit, plus line breaks some senders add: a cheap bound before decoding.
    if len(message) > 2 * MAX_MESSAGE_BYTES:
        raise MessageTooLarge("encoded message too long")
    try:
        raw = base64.b64decode(message)
    except (binascii.Error, ValueError):
        return
    if binding != BINDING_HTTP_REDIRECT:
        if len(raw) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge("message too long")
        return
    inflater = zlib.decompressobj(-15)  # raw DEFLATE (SAML Bindings §3.4.4.1)
    try:
        inflated = inflater.decompress(raw, MAX_MESSAGE_BYTES + 1)
    except zlib.error:
        return
    if len(inflated) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge("inflates beyond the limit")
