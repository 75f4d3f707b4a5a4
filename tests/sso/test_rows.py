"""rows.OneRow builds the same instances as the ORM's select_related, in one statement."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken
from oauth2_provider.models import Application as Client

from portail.sso import bearer
from portail.sso.rows import OneRow

pytestmark = pytest.mark.django_db


def values(instance):
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def token_for(user, client, raw):
    return AccessToken.objects.create(
        user=user,
        application=client,
        token=raw,
        expires=timezone.now() + timedelta(minutes=5),
        scope="openid ent",
        resource=["https://api.example.test/"],
    )


def test_the_access_token_and_its_relations_are_the_orms(active_user, oidc_client):
    token_for(active_user, oidc_client, "raw-token-1")
    expected = (
        AccessToken.objects.select_related(
            "application", "application__portail_application", "user"
        )
        .filter(token_checksum=hashlib.sha256(b"raw-token-1").hexdigest())
        .get()
    )
    with CaptureQueriesContext(connection) as queries:
        loaded = bearer.load_access_token("raw-token-1")
        # Every relation comes with the row: reading them queries nothing.
        app = loaded.application.portail_application
        user = loaded.user
    assert len(queries) == 1
    assert values(loaded) == values(expected)  # datetimes, JSON (resource), checksums
    assert values(loaded.application) == values(expected.application)
    assert values(app) == values(expected.application.portail_application)
    assert app.released_attributes == ["identifier", "displayName", "entProfile", "uai", "email"]
    assert values(user) == values(expected.user)
    assert loaded.expires.tzinfo is not None and not loaded.is_expired()
    assert app.oidc_client is loaded.application


def test_a_client_without_portail_application_caches_none(active_user):
    bare = Client.objects.create(
        name="bare",
        client_type=Client.CLIENT_PUBLIC,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://bare.example.test/cb",
    )
    token_for(active_user, bare, "raw-token-2")
    with CaptureQueriesContext(connection) as queries:
        loaded = bearer.load_access_token("raw-token-2")
        assert getattr(loaded.application, "portail_application", None) is None
    assert len(queries) == 1


def test_unknown_values_and_nul_bytes_find_nothing(active_user, oidc_client):
    assert bearer.load_access_token("never-issued") is None
    clients = OneRow(Client, "client_id", ("portail_application",))
    assert clients.get(oidc_client.client_id).portail_application.name == "Moodle"
    assert clients.get(oidc_client.client_id + "\x00") is None
