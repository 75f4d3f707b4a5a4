import pytest

from portail.federation.login.educonnect import _generate


@pytest.fixture(scope="session")
def saml_keys(tmp_path_factory):
    """The SP's key and certificate, and a directory for the IdPs' (made once per run)."""
    directory = tmp_path_factory.mktemp("saml")
    _generate(directory / "sp.key", directory / "sp.crt")
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
