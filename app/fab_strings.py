"""Flask-AppBuilder's own strings that read badly in French: listed here so they are extracted into our catalog,
which Flask-Babel merges over Flask-AppBuilder's. Each is Flask-AppBuilder's exact msgid; the comment says what its
French catalogue (5.3) has, when it has anything."""

from flask_babel import lazy_gettext as _l

FAB_OVERRIDES = [
    _l("Record Count"),
    _l("Access is Denied"),
    _l("Invalid login. Please try again."),
    # List, show and form widgets (templates/appbuilder/general/lib.html, model/show.html, confirm.html).
    _l("Add Filter"),  # « Ajouter un filter »
    _l("Add"),  # untranslated
    _l("Add a new record"),  # « Ajouter un nouvel article »
    _l("Show"),  # untranslated
    _l("Show record"),  # « Afficer le record »
    _l("Edit"),  # untranslated
    _l("Edit record"),  # « Editer le registre »
    _l("Delete"),  # untranslated
    _l("Delete record"),  # « Supprimer le record »
    _l("Are you sure you want to delete this item?"),  # untranslated
    _l("User confirmation needed"),  # untranslated
    _l("Detail"),  # untranslated: the first tab of a show page
    _l("Back"),  # « Précédent »: the button goes back to the previous list
    _l("Save"),  # « Sauvegarder »
    _l("Order by"),  # « Ordonner par »
    _l("Page size"),  # « Taille de page »
    # Search filters (flask_appbuilder/models/sqla/filters.py).
    _l("Equal to"),  # « Egal à »
    _l("Not Equal to"),  # « Different de »
    _l("Smaller than"),  # « Inferieur à »
    _l("Ends with"),  # « Fini par »
    _l("Not Ends with"),  # « Ne finis pas par »
    _l("Not Contains"),  # « Pas de contenu »
    _l("Relation"),  # « Relation »: « Agence : Relation : Agence de Tours »
    _l("No Relation"),  # « Sans relation »
    _l("Relation as Many"),  # « Relation multiple »
    _l("In"),  # untranslated
    _l("Not In"),  # untranslated
    # Messages after a save or a delete (flask_appbuilder/baseviews.py).
    _l("Database Error"),  # untranslated
    _l("Integrity error, probably unique constraint"),  # « Erreur d'integrité, probablement ... »
    _l("Associated data exists, please delete them first"),  # « Données associées présentes, supprimez-les svp »
    # The administrator's user form (flask_appbuilder/security/views.py): untranslated.
    _l("Groups"),
    _l("Username valid for authentication on DB or LDAP, unused for OID auth"),
    _l("It's not a good policy to remove a user, just make it inactive"),
    _l("The user's email, this will also be used for OID auth"),
    _l("Please rewrite the user's password to confirm"),
    _l("The user role on the application, this will associate with a list of permissions"),
    _l("The user group on the application, this will associate with a list of roles associated with the group"),
]
