from django.urls import path

from . import credentials_views, mail_views, views

app_name = "console"
urlpatterns = [
    path("", views.search, name="search"),
    path("securite/enrolement", views.enrol, name="enrol"),
    path("securite/verification", views.verify, name="verify"),
    path("comptes/<int:pk>/", views.account, name="account"),
    path("comptes/<int:pk>/bloquer", views.block, name="block"),
    path("comptes/<int:pk>/debloquer", views.unblock, name="unblock"),
    path("comptes/<int:pk>/nouveau-code", views.new_code, name="new_code"),
    path("comptes/<int:pk>/fiche", views.single_letter, name="single_letter"),
    path("comptes/<int:pk>/reinitialisation", views.send_reset, name="send_reset"),
    path("comptes/<int:pk>/identifiant", views.change_identifier, name="change_identifier"),
    path("comptes/<int:pk>/noms", views.rename, name="rename"),
    path("comptes/<int:pk>/liens", views.link, name="link"),
    path("comptes/<int:pk>/liens/<int:other_pk>/retirer", views.unlink, name="unlink"),
    path("fiches", views.letters, name="letters"),
    path("fiches/lot", views.letters_ready, name="letters_ready"),
    path("fiches/telecharger", views.letters_download, name="letters_download"),
    path("identifiants", credentials_views.send_credentials, name="send_credentials"),
    path("import", views.import_csv, name="import"),
    path("import/modele-<str:profile>.csv", views.import_template, name="import_template"),
    path("journal", views.audit_log, name="audit"),
    path("doublons", views.duplicates, name="duplicates"),
    path(
        "doublons/<int:pk>/<int:other_pk>/ecarter", views.ignore_duplicate, name="ignore_duplicate"
    ),
    path(
        "doublons/<int:pk>/<int:other_pk>/fusionner", views.merge_duplicate, name="merge_duplicate"
    ),
    path("referents", views.referents, name="referents"),
    path("courriels", mail_views.failed_mails, name="failed_mails"),
    path("referents/<int:structure_pk>/", views.structure_referents, name="structure_referents"),
    path(
        "referents/<int:structure_pk>/nommer/<int:pk>",
        views.appoint_referent,
        name="appoint_referent",
    ),
    path(
        "referents/<int:structure_pk>/retirer/<int:pk>",
        views.dismiss_referent,
        name="dismiss_referent",
    ),
]
