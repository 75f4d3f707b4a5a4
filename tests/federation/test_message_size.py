"""SAML messages are bounded before pysaml2 inflates or parses them (a « deflate bomb »)."""

import base64
import zlib

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from portail.federation.login import educonnect
from portail.federation.messages import MAX_MESSAGE_BYTES, MessageTooLarge, check_size

REQUEST = (
    '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a" Version="2.0" '
    'IssueInstant="2026-11-30T08:00:00Z"><saml:Issuer>https://sp.example/</saml:Issuer>'
    "<!--{padding}--></samlp:AuthnRequest>"
)


def deflated(xml: str) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()


def bomb(size: int) -> str:
    return REQUEST.format(padding=" " * size)


def test_a_message_within_the_limit_passes():
    check_size(deflated(bomb(MAX_MESSAGE_BYTES - 1000)), BINDING_HTTP_REDIRECT)
    check_size(
        base64.b64encode(bomb(MAX_MESSAGE_BYTES - 1000).encode()).decode(), BINDING_HTTP_POST
    )


def test_a_deflate_bomb_is_refused_though_its_url_is_short():
    message = deflated(bomb(50 * MAX_MESSAGE_BYTES))  # 12.5 MB of XML…
    assert len(message) < 20_000  # …in a URL of a few kilobytes
    with pytest.raises(MessageTooLarge):
        check_size(message, BINDING_HTTP_REDIRECT)


def test_an_oversized_post_message_is_refused_garbage_left_to_the_parser():
    with pytest.raises(MessageTooLarge):
        check_size(base64.b64encode(bomb(MAX_MESSAGE_BYTES).encode()).decode(), BINDING_HTTP_POST)
    check_size(base64.b64encode(b"not deflate").decode(), BINDING_HTTP_REDIRECT)  # illegible:
    check_size("%%%", BINDING_HTTP_REDIRECT)  # pysaml2 refuses those next, « illisible »


@pytest.mark.django_db
def test_the_idp_answers_a_bomb_with_a_french_page(client):
    response = client.get("/saml/sso", {"SAMLRequest": deflated(bomb(50 * MAX_MESSAGE_BYTES))})
    assert response.status_code == 413
    assert "trop volumineux" in response.content.decode()


def test_educonnect_logout_endpoint_refuses_a_bomb(educonnect_settings):
    with pytest.raises(educonnect.Refused, match="MessageTooLarge"):
        educonnect.check_logout_message({"SAMLRequest": deflated(bomb(50 * MAX_MESSAGE_BYTES))})
