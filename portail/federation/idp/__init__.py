import logging
import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pysaml2 7.5.5 names the CFB mode where cryptography 50 still has it (removal announced for 49+
# of cryptography's own schedule); SAML never uses CFB here. Silenced so that every `portail`
# command does not print it.
warnings.filterwarnings(
    "ignore", message="CFB has been moved", category=CryptographyDeprecationWarning
)

# xmlschema (pysaml2's schema validator) logs at INFO each schema it loads at import, and
# pysaml2's metadata store logs an ERROR when asked for a binding a provider lacks (which the
# portal asks on purpose, then uses the other one): neither belongs in the portal's logs.
logging.getLogger("xmlschema").setLevel(logging.WARNING)
logging.getLogger("saml2.mdstore").setLevel(logging.CRITICAL)
