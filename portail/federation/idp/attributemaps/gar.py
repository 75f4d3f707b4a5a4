"""pysaml2 attribute map of the GAR attributes (NameFormat basic: the names as the GAR reads them)."""

_NAMES = [
    "GARPersonIdentifiant",
    "idEnt",
    "GARStructureUAI",
    "GARPersonProfils",
    "GARPersonNom",
    "GARPersonPrenom",
    "GARPersonNomAffichage",
    "GARPersonMail",
]

MAP = {
    "identifier": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
    "fro": {name: name for name in _NAMES},
    "to": {name: name for name in _NAMES},
}
