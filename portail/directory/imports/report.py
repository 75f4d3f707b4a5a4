"""What an import did, row by row where it refused something, in French for the référent."""

from dataclasses import dataclass, field


class ImportFileError(Exception):
    """The file cannot be read at all (encoding, missing columns, malformed XML): nothing changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


@dataclass
class Rejected:
    row: int  # line number in the file (the header is line 1), or entry number in an XML file
    reason: str  # French, for the référent
    name: str = ""  # whom the row was about, when known
    file: str = ""

    def __str__(self):
        where = f"{self.file}, " if self.file else ""
        who = f" ({self.name})" if self.name else ""
        return f"{where}ligne {self.row}{who} : {self.reason}"


@dataclass
class CreatedAccount:
    """A new account and its first-connection code in clear: printed once on the letters."""

    user_id: int | None  # None in a preview (dry run)
    identifier: str
    first_name: str
    last_name: str
    profile: str
    classes: list[str]
    activation_code: str  # "" for a migrated account (it keeps its password)


@dataclass
class ImportReport:
    created: list[CreatedAccount] = field(default_factory=list)
    updated: int = 0  # existing accounts whose names, classes, groups or links changed
    unchanged: int = 0
    left: int = 0  # accounts absent from a full import, now "sortant"
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    structures_created: int = 0
    classes_created: int = 0
    links_created: int = 0
    links_removed: int = 0
    dry_run: bool = False
    # External ids of rejected rows: the file still lists these people, so they are not leavers.
    listed_external_ids: set = field(default_factory=set)
    # (name_key(last name), name_key(first name)) of rejected rows without an external id.
    listed_names: set = field(default_factory=set)

    @property
    def created_count(self) -> int:
        return len(self.created)

    def reject(self, row, reason, name="", file=""):
        self.rejected.append(Rejected(row=row, reason=reason, name=name, file=file))

    def counts(self) -> dict:
        return {
            "created": self.created_count,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "left": self.left,
            "rejected": len(self.rejected),
            "links_created": self.links_created,
            "links_removed": self.links_removed,
        }

    def summary(self) -> str:
        lines = [
            f"Comptes créés : {self.created_count}",
            f"Comptes mis à jour : {self.updated}",
            f"Comptes inchangés : {self.unchanged}",
            f"Comptes sortants : {self.left}",
            f"Lignes rejetées : {len(self.rejected)}",
        ]
        lines += [f"  - {r}" for r in self.rejected]
        lines += [f"Avertissement : {w}" for w in self.warnings]
        if self.dry_run:
            lines.append("Aperçu seulement : rien n'a été enregistré.")
        return "\n".join(lines)
