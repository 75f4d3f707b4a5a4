"""Two tiny applications that `make run` starts next to the portal, so that a newcomer sees tiles
that sign them in: « Cahier de textes » speaks CAS 3.0 (python-cas: serviceValidate over HTTP,
single logout), « Classeur » speaks OpenID Connect (Authlib: code + PKCE as a public client;
the ID token's RS256 signature, issuer, audience, nonce and expiry checked with joserfc against
the portal's JWKS). Development only: in-memory sessions, plain HTTP on 127.0.0.1.
"""
