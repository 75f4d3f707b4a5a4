from django.urls import include, path, re_path
from oauth2_provider import urls as dot_urls
from oauth2_provider import views as dot_views

from . import cas_rest, views

cas_urlpatterns = [
    path("login", views.cas_login, name="cas-login"),
    path("logout", views.cas_logout, name="cas-logout"),
    path("validate", views.cas_validate, name="cas-validate"),
    path("serviceValidate", views.cas_service_validate, name="cas-service-validate"),
    path("p3/serviceValidate", views.cas_service_validate, name="cas-p3-service-validate"),
    path("proxyValidate", views.cas_proxy_validate, name="cas-proxy-validate"),
    path("p3/proxyValidate", views.cas_proxy_validate, name="cas-p3-proxy-validate"),
    path("proxy", views.cas_proxy, name="cas-proxy"),
    path("samlValidate", views.cas_saml_validate, name="cas-saml-validate"),
    # CAS REST protocol, for the services an administrator enables (cas_rest.py).
    path("v1/tickets", cas_rest.tickets, name="cas-rest-tickets"),
    path("v1/tickets/<str:tgt>", cas_rest.ticket, name="cas-rest-ticket"),
]

# django-oauth-toolkit under /o/: only what an OIDC provider with the code flow needs (no device
# flow, no dynamic registration, no self-service application management).
oidc_urlpatterns = [
    path("authorize/", views.PortailAuthorizationView.as_view(), name="authorize"),
    path("token/", views.PortailTokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", views.PortailIntrospectView.as_view(), name="introspect"),
    re_path(
        r"^\.well-known/openid-configuration$",
        views.PortailDiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path("userinfo/", views.PortailUserInfoView.as_view(), name="user-info"),
    path(".well-known/jwks.json", views.PortailJwksView.as_view(), name="jwks-info"),
    path("logout/", views.PortailLogoutView.as_view(), name="rp-initiated-logout"),
    *dot_urls.oidc_urlpatterns,
]

# Included from portail/urls.py.
urlpatterns = [
    path("cas/", include((cas_urlpatterns, "sso"), namespace="sso")),
    path("o/", include((oidc_urlpatterns, "oauth2_provider"), namespace="oauth2_provider")),
    # Some relying parties look at the root first: sent to the issuer's document (views.py).
    re_path(
        r"^\.well-known/openid-configuration$",
        views.root_discovery,
        name="openid-configuration",
    ),
]
