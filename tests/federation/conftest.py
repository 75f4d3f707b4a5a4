import re

import pytest
import requests

from portail.accounts.models import Profile
from portail.directory.models import Structure
from portail.federation.idp.keys import generate_pair
from portail.federation.idp.models import ServiceProvider
from tests.federation.saml_sp import TestSP
from tests.helpers import STRONG_PASSWORD, account


@pytest.fixture
def portal(live_server, settings, tmp_path):
    """The live server as the IdP: its public address, plain-HTTP cookies, a GAR idEnt."""
    settings.PORTAIL_BASE_URL = live_server.url
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.PORTAIL_GAR_ID_ENT = "ENT-IDF"
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    settings.PORTAIL_SAML_KEY = str(tmp_path / "idp-key.pem")
    settings.PORTAIL_SAML_CERT = str(tmp_path / "idp-cert.pem")
    generate_pair(tmp_path / "idp-key.pem", tmp_path / "idp-cert.pem", "test IdP")
    return live_server.url


@pytest.fixture
def lycee(transactional_db):
    return Structure.objects.create(uai="0751234A", name="Lycée Claude Monet")


@pytest.fixture
def pupil(lycee):
    return account(
        "lea.martin", "Léa", "Martin", "lea@example.org", [lycee], password=STRONG_PASSWORD
    )


def make_sp(portal, tmp_path, name="manuel", **options):
    """A pysaml2 SP and its registration in the portal (as the admin form would store it)."""
    sign = options.pop("sign_requests", False)
    extra = {"slo_binding": options.pop("slo_binding")} if "slo_binding" in options else {}
    sp = TestSP(tmp_path, portal + "/saml/metadata", sign_requests=sign, name=name, **extra)
    registered = ServiceProvider.objects.create(
        entity_id=sp.entity_id,
        name=options.pop("label", "Manuel numérique"),
        short_label="MN",
        metadata_xml=sp.metadata(),
        **options,
    )
    return sp, registered


@pytest.fixture
def gar(portal, tmp_path, transactional_db):
    sp, registered = make_sp(portal, tmp_path)
    yield sp, registered
    sp.close()


class Browser:
    """A browser as far as HTTP goes: cookies, redirects, forms (requests.Session)."""

    def __init__(self, portal):
        self.portal = portal
        self.http = requests.Session()

    def log_in(self, identifier, password=STRONG_PASSWORD, next_url=None):
        page = self.http.get(next_url or self.portal + "/auth/login", timeout=10)
        return self.submit_login(page, identifier, password)

    def submit_login(self, page, identifier, password=STRONG_PASSWORD):
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        data = {"csrfmiddlewaretoken": token, "identifier": identifier, "password": password}
        next_field = re.search(r'name="next" value="([^"]*)"', page.text)
        if next_field:
            data["next"] = next_field.group(1).replace("&amp;", "&")
        return self.http.post(
            self.portal + "/auth/login", data=data, headers={"Referer": page.url}, timeout=10
        )

    def csrf(self):
        page = self.http.get(self.portal + "/", timeout=10)
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def browser_http(portal):
    return Browser(portal)


@pytest.fixture(scope="session")
def saml_keys(tmp_path_factory):
    """The SP's key and certificate, and a directory for the IdPs' (made once per run)."""
    directory = tmp_path_factory.mktemp("saml")
    generate_pair(directory / "sp.key", directory / "sp.crt", "test")
    return directory


@pytest.fixture
def educonnect_settings(settings, saml_keys, tmp_path):
    """The portal as ÉduConnect SP; returns a function that installs an IdP's metadata."""
    settings.PORTAIL_EDUCONNECT_KEY = str(saml_keys / "sp.key")
    settings.PORTAIL_EDUCONNECT_CERT = str(saml_keys / "sp.crt")
    # Metadata of a placeholder IdP until the test installs its own: the SP metadata needs
    # only the SP's own settings.
    settings.PORTAIL_EDUCONNECT_METADATA = ""

    def install(idp):
        path = tmp_path / f"idp-{abs(hash(idp.entity_id))}.xml"
        settings.PORTAIL_EDUCONNECT_METADATA = str(idp.write_metadata(path))

    return install


__all__ = ["Profile"]
