"""Forms of the tenant's account pages. Labels and messages are plain French; CSRF comes with FlaskForm."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField, DateField, EmailField, FileField, MultipleFileField, PasswordField, SelectField,
    SelectMultipleField, StringField, TelField, TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional

from app.models import OccupantRelation, ProfessionalSituation
from app.services.passwords import MAX_LENGTH, POLICY_TEXT

REQUIRED = _l("Ce champ est obligatoire.")
EMAIL_INVALID = _l("Saisissez une adresse e-mail valide, par exemple nom@exemple.fr.")


def _required():
    return DataRequired(message=REQUIRED)


def _password(label):
    return PasswordField(label, validators=[_required(), Length(max=MAX_LENGTH)], description=POLICY_TEXT)


class RegisterForm(FlaskForm):
    reference = StringField(_l("Numéro client"), validators=[_required(), Length(max=20)],
                            description=_l("8 chiffres, indiqué sur votre avis d'échéance. Vous pouvez aussi "
                                           "saisir votre numéro de contrat (L/123456)."))
    surname = StringField(_l("Nom du signataire du bail"), validators=[_required(), Length(max=100)])
    email = EmailField(_l("Adresse e-mail"), validators=[_required(), Email(message=EMAIL_INVALID),
                                                         Length(max=254)],
                       description=_l("Elle sera votre identifiant de connexion."))
    password = _password(_l("Mot de passe"))
    confirm = PasswordField(_l("Confirmation du mot de passe"), validators=[_required()])
    terms = BooleanField(_l("J'accepte les conditions d'utilisation"),
                         validators=[DataRequired(message=_l("Vous devez accepter les conditions d'utilisation."))])


class EmailOnlyForm(FlaskForm):
    email = EmailField(_l("Adresse e-mail"), validators=[_required(), Email(message=EMAIL_INVALID),
                                                         Length(max=254)])


class ForgotIdentifierForm(FlaskForm):
    reference = StringField(_l("Numéro client"), validators=[_required(), Length(max=20)],
                            description=_l("8 chiffres, indiqué sur votre avis d'échéance."))
    surname = StringField(_l("Nom du signataire du bail"), validators=[_required(), Length(max=100)])


class ResetPasswordForm(FlaskForm):
    password = _password(_l("Nouveau mot de passe"))
    confirm = PasswordField(_l("Confirmation du mot de passe"), validators=[_required()])


class LoginForm(FlaskForm):
    username = StringField(_l("Identifiant (adresse e-mail)"), validators=[_required(), Length(max=254)])
    password = PasswordField(_l("Mot de passe"), validators=[_required(), Length(max=MAX_LENGTH)])


class CodeForm(FlaskForm):
    code = StringField(_l("Code à 6 chiffres"), validators=[_required(), Length(max=12)],
                       description=_l("Le code affiché maintenant par votre application d'authentification."),
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})


class ContactForm(FlaskForm):
    phone = TelField(_l("Téléphone"), validators=[Optional(), Length(max=20)],
                     description=_l("Par exemple 06 12 34 56 78."))
    professional_situation = SelectField(
        _l("Situation professionnelle"),
        choices=lambda: [("", str(_l("Non renseignée")))] + [(m.name, str(m.label)) for m in ProfessionalSituation])
    paperless = BooleanField(_l("Je souhaite recevoir mes documents (avis d'échéance, quittances) par e-mail"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Mot de passe actuel"), validators=[_required()])
    password = _password(_l("Nouveau mot de passe"))
    confirm = PasswordField(_l("Confirmation du nouveau mot de passe"), validators=[_required()])


class ChangeEmailForm(FlaskForm):
    email = EmailField(_l("Nouvelle adresse e-mail"), validators=[_required(), Email(message=EMAIL_INVALID),
                                                                  Length(max=254)])
    password = PasswordField(_l("Mot de passe actuel"), validators=[_required()],
                             description=_l("Pour confirmer que c'est bien vous."))


class CloseAccountForm(FlaskForm):
    password = PasswordField(_l("Mot de passe"), validators=[_required()])


DATE_INVALID = _l("Saisissez une date valide.")


class OccupantArrivalForm(FlaskForm):
    first_name = StringField(_l("Prénom"), validators=[_required(), Length(max=100)])
    last_name = StringField(_l("Nom"), validators=[_required(), Length(max=100)])
    birth_date = DateField(_l("Date de naissance"), validators=[Optional()], description=_l("Facultatif."))
    relation = SelectField(_l("Lien avec le signataire"), validators=[_required()],
                           choices=lambda: [(m.name, str(m.label)) for m in OccupantRelation
                                            if m is not OccupantRelation.SIGNATORY])
    arrival_date = DateField(_l("Date d'arrivée"), validators=[DataRequired(message=DATE_INVALID)])


class OccupantDepartureForm(FlaskForm):
    occupant = SelectField(_l("Occupant qui part"), validators=[_required()], coerce=int, choices=[])
    departure_date = DateField(_l("Date de départ"), validators=[DataRequired(message=DATE_INVALID)])


class CertificateCheckForm(FlaskForm):
    class Meta:
        csrf = False  # a read-only lookup by GET

    code = StringField(_l("Code de vérification"), validators=[_required(), Length(max=20)],
                       description=_l("Il figure sur l'attestation, par exemple ABCD-EFGH-JKLM."))


class PayForm(FlaskForm):
    """Card payment. The view fills the lease choices, each with what it owes and its maximum (`data-` attributes that
    static/js/pay-amount.js copies into the page when the choice changes)."""

    lease = SelectField(_l("Contrat à régler"), choices=[], validators=[Optional()],  # absent with one lease
                        invalid_choice_message=_l("Choisissez un de vos contrats dans la liste."))
    amount = StringField(_l("Montant à payer (€)"), validators=[_required(), Length(max=20)],
                         render_kw={"inputmode": "decimal"},
                         description=_l("Par défaut, ce que vous devez. Vous pouvez payer un autre montant."))


class NewRequestForm(FlaskForm):
    category = SelectField(_l("Type de demande"), validators=[_required()], choices=[])
    common_areas = BooleanField(_l("Le problème concerne les parties communes (hall, escalier, ascenseur, cave...)"))
    subject = StringField(_l("Objet"), validators=[_required(), Length(max=200)],
                          description=_l("En quelques mots, par exemple « Fuite sous l'évier »."))
    description = TextAreaField(_l("Description"), validators=[_required(), Length(max=5000)],
                                description=_l("Décrivez le problème : où, depuis quand, ce que vous avez constaté."))
    availability = StringField(_l("Quand êtes-vous joignable ?"), validators=[Optional(), Length(max=200)],
                               description=_l("Par exemple : en semaine après 17 h."))
    presence_needed = BooleanField(_l("Ma présence est nécessaire pour l'intervention"))
    pets = BooleanField(_l("Il y a des animaux dans le logement"))
    attachments = MultipleFileField(_l("Photos ou documents"),
                                    description=_l("Facultatif. Photos JPEG ou PNG, ou PDF, 8 Mo au plus chacun, "
                                                   "5 fichiers au plus."))


class AddInformationForm(FlaskForm):
    body = TextAreaField(_l("Votre message"), validators=[Optional(), Length(max=5000)])
    attachments = MultipleFileField(_l("Photos ou documents"), description=_l("Facultatif."))


class RateForm(FlaskForm):
    rating = SelectField(_l("Votre avis sur le traitement"), validators=[_required()],
                         choices=lambda: [("5", str(_l("5 - Très satisfait"))), ("4", str(_l("4 - Satisfait"))),
                                          ("3", str(_l("3 - Moyen"))), ("2", str(_l("2 - Peu satisfait"))),
                                          ("1", str(_l("1 - Pas satisfait")))])


class ReopenForm(FlaskForm):
    reason = TextAreaField(_l("Pourquoi le problème n'est-il pas réglé ?"), validators=[_required(),
                                                                                       Length(max=2000)])


class InsuranceForm(FlaskForm):
    insurer = StringField(_l("Assureur"), validators=[_required(), Length(max=120)],
                          description=_l("Choisissez dans la liste ou écrivez le nom de votre assureur."))
    policy_number = StringField(_l("Numéro de contrat d'assurance"), validators=[_required(), Length(max=60)])
    start_date = DateField(_l("Valable du"), validators=[DataRequired(message=DATE_INVALID)])
    end_date = DateField(_l("Valable jusqu'au"), validators=[DataRequired(message=DATE_INVALID)])
    document = FileField(_l("Attestation (PDF)"), description=_l("Le fichier PDF envoyé par votre assureur, 8 Mo "
                                                                  "au plus."))


class DirectDebitForm(FlaskForm):
    iban = StringField(_l("IBAN"), validators=[_required(), Length(max=42)],
                       description=_l("Il figure sur votre RIB, par exemple FR76 3000 4000 0312 3456 7890 143."))
    bic = StringField(_l("BIC"), validators=[Optional(), Length(max=11)],
                      description=_l("Facultatif : nous le retrouvons à partir de l'IBAN."))
    account_holder = StringField(_l("Titulaire du compte"), validators=[_required(), Length(max=140)])
    street = StringField(_l("Adresse du titulaire"), validators=[_required(), Length(max=140)])
    postcode = StringField(_l("Code postal"), validators=[_required(), Length(max=16)])
    city = StringField(_l("Ville"), validators=[_required(), Length(max=100)])
    debit_day = SelectField(_l("Jour du prélèvement"), validators=[_required()],
                            choices=lambda: [("2", str(_l("Le 2 du mois"))), ("7", str(_l("Le 7 du mois"))),
                                             ("10", str(_l("Le 10 du mois")))],
                            invalid_choice_message=_l("Choisissez le 2, le 7 ou le 10 du mois."))
    # The leases the mandate covers (every current lease by default); choices are set by the view.
    leases = SelectMultipleField(_l("Contrats payés par ce prélèvement"), coerce=int, choices=[],
                                 validate_choice=False)
    rib = FileField(_l("Votre RIB (PDF ou photo)"), description=_l("PDF, JPEG ou PNG, 8 Mo au plus."))
    consent = BooleanField(_l("J'autorise le prélèvement de mes loyers et charges sur ce compte"))
    password = PasswordField(_l("Mot de passe"), validators=[Optional()],
                             description=_l("Demandé pour changer de coordonnées bancaires."))
