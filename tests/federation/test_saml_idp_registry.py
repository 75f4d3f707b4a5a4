"""IdP metadata, signing keys, and providers registered by administrators from their metadata."""

import os
import threading
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import Config
from saml2.mdstore import MetadataStore

from portail.accounts.models import User
from portail.federation.idp import keys
from portail.federation.idp.models import PersonIdentifier, ServiceProvider
from portail.federation.idp.services import gar_attributes, gar_person_identifier
from tests.conftest import enter_admin
from tests.federation.saml_sp import sp_metadata
from tests.servers import free_port

GAR_ENTITY = "https://gar.example.test/sp/metadata"


@pytest.fixture
def idp_keys(settings, tmp_path):
    settings.PORTAIL_SAML_KEY = str(tmp_path / "k.pem")
    settings.PORTAIL_SAML_CERT = str(tmp_path / "c.pem")
    keys.generate_pair(tmp_path / "k.pem", tmp_path / "c.pem", "test")
    return tmp_path / "c.pem"


def test_metadata_describes_the_idp(client, db, idp_keys):
    answer = client.get("/saml/metadata")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/samlmetadata+xml"
    xml = answer.content.decode()
    store = MetadataStore(None, Config())
    store.load("inline", xml)
    entity = "https://ent.example.test/saml/metadata"
    assert list(store.keys()) == [entity]
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        assert store.single_sign_on_service(entity, binding)[0]["location"] == (
            "https://ent.example.test/saml/sso"
        )
        assert store.single_logout_service(entity, binding, "idpsso")[0]["location"] == (
            "https://ent.example.test/saml/slo"
        )
    signing = store.certs(entity, "idpsso", "signing")
    assert signing and signing[0][1].replace("\n", "") == keys.certificate_body(str(idp_keys))


def test_development_keys_are_generated_once_and_private(settings, tmp_path):
    settings.PORTAIL_SAML_KEY = settings.PORTAIL_SAML_CERT = ""
    settings.VAR_DIR = tmp_path
    key, cert = keys.signing_files()
    assert os.stat(key).st_mode & 0o777 == 0o600
    body = keys.certificate_body(cert)
    assert keys.signing_files() == (key, cert)
    assert keys.certificate_body(cert) == body  # not regenerated


def test_gar_identifier_survives_a_rename_and_is_not_the_login(db, school, active_user):
    first = gar_person_identifier(active_user)
    active_user.identifier = "jean.dupont2"
    active_user.last_name = "Dupont-Martin"
    active_user.save()
    assert gar_person_identifier(active_user) == first
    assert PersonIdentifier.objects.count() == 1
    values = gar_attributes(active_user, ["GARPersonIdentifiant", "GARPersonProfils", "idEnt"])
    assert values["GARPersonProfils"] == ["National_tut"]  # a parent
    assert "idEnt" not in values  # PORTAIL_GAR_ID_ENT unset: not sent empty


@pytest.fixture
def admin_client(client, db):
    admin = User.objects.create_superuser("admin.region", "un mot de passe solide 42")
    enter_admin(client, admin)
    return client


def form(**extra):
    data = {
        "name": "GAR",
        "short_label": "GAR",
        "enabled": "on",
        "show_tile": "on",
        "position": "10",
        "profiles": ["eleve", "enseignant"],
        "released_attributes": ["GARPersonIdentifiant", "idEnt", "GARStructureUAI"],
        "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "metadata_xml": "",
    }
    data.update(extra)
    return data


def test_admin_registers_a_provider_from_a_metadata_file(admin_client, tmp_path, idp_keys):
    assert admin_client.get("/admin/federation_idp/serviceprovider/add/").status_code == 200
    upload = SimpleUploadedFile(
        "gar.xml", sp_metadata(tmp_path, GAR_ENTITY).encode(), "application/xml"
    )
    answer = admin_client.post(
        "/admin/federation_idp/serviceprovider/add/", form(metadata_file=upload)
    )
    assert answer.status_code == 302, unescape(answer.content.decode())[-3000:]
    sp = ServiceProvider.objects.get()
    assert sp.entity_id == GAR_ENTITY
    assert sp.released_attributes == ["GARPersonIdentifiant", "idEnt", "GARStructureUAI"]
    assert "SPSSODescriptor" in sp.metadata_xml
    # The same entity twice is refused.
    upload = SimpleUploadedFile("gar.xml", sp.metadata_xml.encode(), "application/xml")
    answer = admin_client.post(
        "/admin/federation_idp/serviceprovider/add/", form(name="Autre", metadata_file=upload)
    )
    assert answer.status_code == 200
    assert "déjà enregistré" in unescape(answer.content.decode())


def test_admin_refuses_metadata_that_is_not_an_sp(admin_client, idp_keys):
    answer = admin_client.post(
        "/admin/federation_idp/serviceprovider/add/", form(metadata_xml="<pas-du-saml/>")
    )
    assert answer.status_code == 200
    text = unescape(answer.content.decode())
    assert "exactement un fournisseur de services" in text or "illisibles" in text
    assert not ServiceProvider.objects.exists()


@pytest.fixture
def metadata_server(tmp_path):
    body = sp_metadata(tmp_path, GAR_ENTITY).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/metadata"
    server.shutdown()
    server.server_close()


def test_admin_fetches_metadata_through_the_outbound_guard(
    admin_client, settings, metadata_server, idp_keys
):
    # Loopback is an internal address: refused unless the test setting allows it (CWE-918).
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = False
    settings.DEBUG = False
    answer = admin_client.post(
        "/admin/federation_idp/serviceprovider/add/", form(metadata_url=metadata_server)
    )
    assert answer.status_code == 200
    assert "adresse interne refusée" in unescape(answer.content.decode())
    assert not ServiceProvider.objects.exists()

    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    answer = admin_client.post(
        "/admin/federation_idp/serviceprovider/add/", form(metadata_url=metadata_server)
    )
    assert answer.status_code == 302, unescape(answer.content.decode())[-3000:]
    sp = ServiceProvider.objects.get()
    assert sp.entity_id == GAR_ENTITY and sp.metadata_url == metadata_server
