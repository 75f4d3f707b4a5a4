"""The audit trail in plain French: the one place where an action tag becomes words.

`LABELS` names every action the code records (tests/console/test_journal.py reads the code's
audit calls and checks that each tag has a label); `describe()` turns one event's data into a
sentence (« Classe : 2de 3 → 1re G2 »), never a raw tag nor a Python value.
"""

import re
from dataclasses import dataclass

from portail.accounts.models import Profile, State

NBSP = "\u00a0"

LABELS = {
    # Accounts: the owner
    "account.created": "Compte créé",
    "account.activated": "Compte activé (1re connexion)",
    "account.login": "Connexion",
    "account.login.failed": "Échec de connexion",
    "account.login.blocked": "Connexion refusée : compte bloqué",
    "account.login.deactivated": "Connexion refusée : compte désactivé",
    "account.login.locked": "Connexion refusée : trop d’essais",
    "account.logout": "Déconnexion",
    "account.password.set": "Mot de passe défini à l’activation",
    "account.password.changed": "Mot de passe changé par son titulaire",
    "account.password.reset": "Mot de passe réinitialisé par lien",
    "account.password.reset_requested": "Réinitialisation du mot de passe demandée",
    "account.password.reset_link_refused": "Lien de réinitialisation refusé",
    "account.password.check_failed": "Mot de passe actuel mal saisi",
    "account.identifier.requested": "Identifiant oublié demandé",
    "account.email.changed": "Adresse de messagerie changée",
    "account.phone.changed": "Numéro de téléphone changé",
    "account.credentials_mailed": "Identifiants envoyés par courriel",
    # The référent's console
    "console.account.blocked": "Compte bloqué",
    "console.account.unblocked": "Compte débloqué",
    "console.account.new_code": "Nouveau code d’activation donné",
    "console.account.reset_link_sent": "Lien de réinitialisation envoyé",
    "console.account.identifier_changed": "Identifiant changé",
    "console.account.renamed": "Nom corrigé",
    "console.account.linked": "Lien parent–élève ajouté",
    "console.account.unlinked": "Lien parent–élève retiré",
    "console.account.merged": "Doublon fusionné dans ce compte",
    "console.account.merged_into": "Compte fusionné dans un autre et désactivé",
    "console.letters.new_code": "Nouveau code d’activation imprimé sur une fiche",
    "console.duplicate.ignored": "Doublon écarté : deux personnes différentes",
    "console.mail.requeued": "Courriel remis en file d’envoi",
    "console.function.granted": "Fonction attribuée",
    "console.totp.enrolled": "Application d’authentification enregistrée",
    "console.totp.verified": "Vérification en deux étapes réussie",
    "console.totp.failed": "Code de vérification erroné",
    "console.totp.recovery_used": "Code de secours utilisé",
    "console.totp.reset": "Vérification en deux étapes réinitialisée",
    # The directory
    "directory.import": "Import d’un fichier",
    "directory.leavers": "Comptes sortants désactivés ou effacés",
    "directory.referent.appointed": "Nommé référent ENT",
    "directory.referent.dismissed": "Retiré des référents ENT",
    "directory.regional_admin.appointed": "Nommé administrateur régional",
    "account.sessions.others_ended": "Déconnexion de tous les autres appareils",
    "account.new_device.notified": "Courriel de connexion depuis un nouvel appareil envoyé",
    "account.new_device.not_notified": "Connexion depuis un nouvel appareil, sans courriel (limite du jour)",
    # Single sign-on
    "sso.cas.ticket": "Accès à une application (CAS)",
    "sso.cas.unknown_service": "Application inconnue refusée (CAS)",
    "sso.cas.rest.tgt": "Connexion d’une application mobile (CAS)",
    "sso.cas.rest.ticket": "Accès à une application mobile (CAS)",
    "sso.cas.rest.refused": "Accès d’une application mobile refusé (CAS)",
    "sso.cas.rest.logout": "Déconnexion d’une application mobile (CAS)",
    "sso.oidc.authorize": "Accès à une application (OpenID Connect)",
    "sso.oidc.logout_hint": "Déconnexion demandée par une application (OpenID Connect)",
    # Federation (ÉduConnect, FranceConnect, SAML applications such as the GAR)
    "federation.educonnect.no_account": "Connexion ÉduConnect sans compte correspondant dans l’ENT",
    "federation.educonnect.refused": "Réponse d’ÉduConnect refusée",
    "federation.franceconnect.refused": "Réponse de FranceConnect refusée",
    "federation.franceconnect.linked": "Compte relié à FranceConnect",
    "federation.franceconnect.unlinked": "Liaison FranceConnect supprimée",
    "federation.franceconnect.unlinked_identity": "Identité FranceConnect pas encore reliée, liaison proposée",
    "federation.franceconnect.link_refused": "Liaison FranceConnect refusée (réservée aux parents)",
    "federation.franceconnect.link_conflict": "Liaison FranceConnect refusée (identité déjà reliée)",
    "federation.saml.login": "Accès à une application (SAML)",
    "federation.saml.denied": "Accès à une application refusé (SAML)",
    "federation.saml.unknown_sp": "Application inconnue refusée (SAML)",
    "federation.saml.bad_request": "Demande d’une application refusée (SAML)",
    "federation.saml.bad_acs": "Adresse de retour d’une application refusée (SAML)",
    "federation.saml.logout": "Déconnexion demandée par une application (SAML)",
    "federation.saml.logout_sent": "Déconnexion transmise aux applications (SAML)",
    "federation.saml.bad_logout": "Demande de déconnexion refusée (SAML)",
    # Operations
    "mail.requeued": "Courriels remis en file d’envoi",
    "audit.purge": "Journal purgé (durée de conservation)",
    "mail.purged": "Anciens courriels supprimés (durée de conservation)",
}

FIELDS = {
    "state": "État",
    "identifier": "Identifiant",
    "first_name": "Prénom",
    "last_name": "Nom",
    "profile": "Profil",
    "classes": "Classe",
    "structures": "Établissement",
    "groups": "Groupe",
    "parents": "Parent",
    "children": "Enfant",
    "parent": "Parent",
    "child": "Élève",
    "external_id": "Identifiant de l’annuaire",
    "external_source": "Source de l’annuaire",
    "email": "Adresse de messagerie",
    "phone": "Téléphone",
    "birth_date": "Date de naissance",
    "ine": "INE",
    "deactivated": "Désactivé",
}
# Several values: the plural of the field's name.
PLURALS = {
    "Classe": "Classes",
    "Établissement": "Établissements",
    "Groupe": "Groupes",
    "Parent": "Parents",
    "Enfant": "Enfants",
}
# Kept as presence only (the trail holds no contact data): « renseigné » or « vide ».
PRESENCE = {"external_id", "email", "phone", "birth_date", "ine"}
# Accounts named by their id in the trail (arrêté du 30 novembre 2006, art. 6).
ACCOUNT_IDS = {"parents", "children"}

OUTCOMES = {
    "sent": "lien envoyé",
    "too_soon": "demande trop rapprochée, rien n’a été envoyé",
    "no_email": "aucune adresse de messagerie connue",
    "unknown": "identifiant inconnu",
}


def label(tag: str) -> str:
    """The French label of a tag; an unknown tag (an older version's) still reads as French."""
    return LABELS.get(tag, "Autre action")


def class_name(name) -> str:
    """French typography of a class name: « 2nde 3 » → « 2de 3 », « 1ère G2 » → « 1re G2 »."""
    name = str(name)
    name = re.sub(r"\b(\d)(?:ère|ere|ière)\b", r"\1re", name)
    name = re.sub(r"\b(\d)(?:nde|nd)\b", r"\1de", name)
    name = re.sub(r"\b(\d+)(?:ème|eme|ième)\b", r"\1e", name)
    return name


def _value(field, value, names) -> str:
    if field == "state":
        try:
            return str(State(value).label)
        except ValueError:
            return "—"
    if field == "profile":
        try:
            return str(Profile(value).label)
        except ValueError:
            return "—"
    if field in PRESENCE or isinstance(value, bool):
        return "renseigné" if value else "vide"
    if isinstance(value, list | tuple):
        if not value:
            return "aucun"
        return ", ".join(_value(field, v, names) for v in value)
    if field in ACCOUNT_IDS:
        return names.get(value, "un compte effacé")
    if field == "classes":
        return class_name(value)
    if value is None or value == "":
        return "—"
    return str(value)


def _field(field, *values) -> str:
    name = FIELDS.get(field, "Autre donnée")
    if any(isinstance(v, list | tuple) and len(v) > 1 for v in values):
        name = PLURALS.get(name, name)
    return name


def changes(before: dict, after: dict, names=None) -> list[str]:
    """« Classe : 2de 3 → 1re G2 » for each field that changed; nothing for unchanged ones."""
    names = names or {}
    out = []
    for field in [*before, *(f for f in after if f not in before)]:
        old, new = before.get(field), after.get(field)
        if field in before and field in after:
            if old == new:
                continue
            out.append(
                f"{_field(field, old, new)}{NBSP}: {_value(field, old, names)} "
                f"→ {_value(field, new, names)}"
            )
        elif field in after:
            out.append(f"{_field(field, new)}{NBSP}: {_value(field, new, names)}")
        else:
            out.append(f"{_field(field, old)} retiré{NBSP}: {_value(field, old, names)}")
    return out


def _merge(data, names) -> list[str]:
    """What the kept account received: the other account, and each thing it brought."""
    before, after = data.get("before") or {}, data.get("after") or {}
    folded = names.get(data.get("folded"), "un compte effacé")
    out = [f"Compte fusionné dans celui-ci{NBSP}: {folded}"]
    received = []
    for field in ("classes", "structures", "groups", "parents", "children"):
        added = [v for v in after.get(field) or [] if v not in (before.get(field) or [])]
        if added:
            received.append(f"{_field(field, added).lower()} {_value(field, added, names)}")
    received += sorted(FIELDS[f].lower() for f in PRESENCE if after.get(f) and not before.get(f))
    if received:
        out.append(
            f"Repris de l’autre compte{NBSP}: {' ; '.join(received)}".replace(" ;", NBSP + ";")
        )
    return out


def _details(event, names) -> list[str]:
    data = event.data or {}
    tag = event.tag
    if tag == "console.account.merged":
        return _merge(data, names)
    if tag == "console.account.merged_into":
        return [f"Compte conservé{NBSP}: {names.get(data.get('kept'), 'un compte effacé')}"]
    if tag in ("console.account.linked", "console.account.unlinked"):
        other = data.get("other")
        return [f"Avec{NBSP}: {other}"] if other else []
    if tag == "console.duplicate.ignored":
        return [f"Avec{NBSP}: {names.get(data.get('other'), 'un compte effacé')}"]
    if tag == "account.created":
        out = changes({}, data.get("after") or {}, names)
        if str(data.get("source", "")).startswith("csv:"):
            out.insert(0, f"Import du fichier de l’établissement {data['source'][4:]}")
        elif data.get("source"):
            out.insert(0, "Import de l’annuaire")
        return [line for line in out if not line.startswith("Identifiant" + NBSP)]
    if tag == "account.activated":
        out = ["Adresse de messagerie vérifiée" if data.get("email_proven") else ""]
        out.append("Téléphone donné" if data.get("phone_given") else "")
        return [line for line in out if line]
    if tag in ("account.password.reset_requested",) and data.get("outcome"):
        return (
            [OUTCOMES.get(data["outcome"], "").capitalize()] if data["outcome"] in OUTCOMES else []
        )
    if tag == "console.letters.new_code" and data.get("renewed"):
        return ["Le code de la fiche précédente ne fonctionne plus"]
    if tag == "account.credentials_mailed" and data.get("resend"):
        return ["Nouvel envoi"]
    if tag == "console.totp.recovery_used" and "left" in data:
        return [f"Codes de secours restants{NBSP}: {data['left']}"]
    if tag in ("directory.referent.appointed", "directory.referent.dismissed"):
        return [f"Établissement{NBSP}: {data.get('structure', '—')}"]
    if tag == "directory.import":
        return [
            f"{data.get('created', 0)} créé(s), {data.get('updated', 0)} mis à jour, "
            f"{data.get('left', 0)} sortant(s), {data.get('rejected', 0)} ligne(s) rejetée(s)"
        ]
    if tag in ("sso.cas.ticket", "sso.cas.rest.ticket", "sso.oidc.authorize") and data.get(
        "application"
    ):
        return [f"Application{NBSP}: {data['application']}"]
    if "before" in data or "after" in data:
        return changes(data.get("before") or {}, data.get("after") or {}, names)
    return []


@dataclass
class Row:
    event: object
    label: str
    sentence: str  # « Compte bloqué par Marie Martin. »
    details: list[str]


def _by(event) -> str:
    actor = event.actor
    if actor is None or actor.pk == event.target_id:
        return ""
    return f" par {actor.display_name} ({actor.identifier})"


def account_names(events) -> dict:
    """The identifiers of the accounts that events name by id, in one query."""
    from portail.accounts.models import User

    ids = set()
    for event in events:
        data = event.data or {}
        for key in ("kept", "folded"):
            if isinstance(data.get(key), int):
                ids.add(data[key])
        if event.tag == "console.duplicate.ignored" and isinstance(data.get("other"), int):
            ids.add(data["other"])
        for side in ("before", "after"):
            for key in ACCOUNT_IDS:
                ids.update(v for v in (data.get(side) or {}).get(key) or [] if isinstance(v, int))
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "identifier"))


def event_rows(events) -> list[Row]:
    events = list(events)
    names = account_names(events)
    return [Row(e, label(e.tag), f"{label(e.tag)}{_by(e)}.", _details(e, names)) for e in events]


def tag_choices(tags) -> list[tuple[str, str]]:
    """The action filter: French labels, alphabetical; an unknown tag keeps its own entry."""
    return sorted(((t, label(t)) for t in tags), key=lambda c: c[1].lower())
