"""The staff back office: Flask-AppBuilder model views, in French.

Views are named `Staff*` (see `app.roles`). Large tables are never offered as a select in a form: a household is
typed by its client number, a unit by its reference, a lease by its number.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Callable

from flask import Response, abort, flash, g, redirect, request, stream_with_context, url_for
from markupsafe import Markup
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.exceptions import FABException
from flask_appbuilder.hooks import before_request
from flask_appbuilder.models.filters import BaseFilter, FilterRelation
from flask_appbuilder.models.sqla.filters import FilterEqual, FilterInFunction
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.sqla.models import User
from flask_appbuilder.urltools import get_filter_args, get_order_args
import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from flask_babel import format_decimal, get_timezone, lazy_gettext as _l
from text_unidecode import unidecode
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional as OptionalValidator

from app import MAX_ROW_ID, formatting
from app.security import AgencyScopeFilter, LandlordWideMixin
from app.models import (
    AuditEvent, Agency, BankFileImport, CollectionStatus, DirectDebitBatch, DirectDebitCollection, DirectDebitMandate, Document, Household, InsuranceCertificate, JobRun, LabelledEnum, Lease, LedgerEntry,
    MONEY, ZERO, MandateStatus, Occupant, PaymentStatus, ReviewStatus, PaymentTransaction, RequestEvent, Residence, StaffAgency, TenantAccount, TenantRequest, Unit,
    utcnow,
)
from app.services.payments import payment_days
from app.services import accounts, queues, requests
from app.money import MoneyError, parse_money
from app.staff.fields import (
    EnumSelectField, MoneyField, NaturalKeyField, NumberField, read_moment, reading_filter,
)

READ_ONLY = ["can_list", "can_show"]
NO_DELETE = ["can_list", "can_show", "can_add", "can_edit"]
REQUIRED = _l("Ce champ est obligatoire.")
INTEGER_RANGE = _l("Saisissez un nombre entier entre %(min)s et %(max)s.")
MAX_PAGE_SIZE = 100  # the most Flask-AppBuilder's page-size menu offers
MAX_PAGE = 1_000_000
MAX_REMEMBERED_URL = 400  # five of them fit in the session cookie with the rest
_NUMBER_RE = re.compile(r"[0-9]{1,19}")  # then compared with a bound: int() of a huge string is slow
_FILTER_ARG_RE = re.compile(r"_flt_([0-9])_(.*)")  # Flask-AppBuilder's own pattern
EXPORT_MAX_ROWS = 50_000  # a CSV export past this asks for a narrower search
EXPORT_CHUNK_ROWS = 1000  # rows fetched, and sent, at a time
WAITING = "waiting"  # a queue list's column: how long the row has waited, marked past its promise

log = logging.getLogger(__name__)

LABELS = {
    "agency": _l("Agence"), "code": _l("Code"), "name": _l("Nom"), "street": _l("Adresse"),
    "complement": _l("Complément d'adresse"), "postcode": _l("Code postal"), "city": _l("Ville"),
    "phone": _l("Téléphone"), "email": _l("Adresse e-mail"), "opening_hours": _l("Horaires d'ouverture"),
    "residence": _l("Résidence"), "built_year": _l("Année de construction"), "has_lift": _l("Ascenseur"),
    "reference": _l("Référence"), "kind": _l("Type"), "typology": _l("Typologie"), "floor": _l("Étage"),
    "surface_m2": _l("Surface (m²)"), "client_number": _l("Numéro client"),
    "signatory_civility": _l("Civilité"), "signatory_last_name": _l("Nom du signataire"),
    "signatory_first_name": _l("Prénom du signataire"), "professional_situation": _l("Situation professionnelle"),
    "billing_street": _l("Adresse de facturation"), "billing_complement": _l("Complément (facturation)"),
    "billing_postcode": _l("Code postal (facturation)"), "billing_city": _l("Ville (facturation)"),
    "paperless_consent": _l("Documents par e-mail"), "paperless_consent_at": _l("Accord donné le"),
    "payment_incident": _l("Incident de paiement"), "created_at": _l("Créé le"), "number": _l("Numéro"),
    "unit": _l("Lot"), "household": _l("Foyer"), "start_date": _l("Date d'entrée"), "end_date": _l("Date de sortie"),
    "rent": _l("Loyer"), "charges": _l("Provisions sur charges"), "housing_benefit": _l("APL mensuelle"),
    "deposit": _l("Dépôt de garantie"), "lease": _l("Contrat"), "last_name": _l("Nom"), "first_name": _l("Prénom"),
    "birth_date": _l("Date de naissance"), "relation": _l("Lien"), "arrival_date": _l("Arrivée"),
    "departure_date": _l("Départ"), "direction": _l("Sens"), "amount": _l("Montant"), "rent_part": _l("Dont loyer"),
    "charges_part": _l("Dont charges"), "label": _l("Libellé"), "entry_date": _l("Date"),
    "due_date": _l("Échéance"), "period": _l("Période"), "external_ref": _l("Référence externe"),
    "title": _l("Titre"), "original_filename": _l("Fichier"), "insurer": _l("Assureur"),
    "policy_number": _l("Numéro de police"), "status": _l("Statut"), "decision_reason": _l("Motif"),
    "decided_at": _l("Décidé le"), "decided_by": _l("Décidé par"), "masked_iban": _l("IBAN"), "bic": _l("BIC"),
    "bank_name": _l("Banque"), "account_holder": _l("Titulaire du compte"), "debit_day": _l("Jour de prélèvement"),
    "signed_on": _l("Signé le"), "activated_at": _l("Activé le"), "last_collection_on": _l("Dernier prélèvement"),
    "order_id": _l("Commande"), "trans_id": _l("Transaction"), "trans_day": _l("Jour"), "currency": _l("Devise"),
    "ctx_mode": _l("Mode"), "bank_status": _l("Statut banque"), "bank_result": _l("Code retour"),
    "trans_uuid": _l("Identifiant banque"), "notified_at": _l("Notifié le"), "review_reason": _l("À vérifier car"),
    "category": _l("Catégorie"), "common_areas": _l("Parties communes"), "subject": _l("Objet"),
    "description": _l("Description"), "access_info": _l("Accès au logement"), "assigned_to": _l("Attribuée à"),
    "updated_at": _l("Mise à jour"), "resolved_at": _l("Résolue le"), "rating": _l("Note"),
    "request": _l("Demande"), "author_side": _l("Auteur"), "author": _l("Agent"), "body": _l("Message"),
    "old_status": _l("Ancien statut"), "new_status": _l("Nouveau statut"), "user": _l("Utilisateur"),
    "user.last_login": _l("Dernière connexion"), "user.active": _l("Actif"), "locale": _l("Langue"), "job_name": _l("Traitement"), "started_at": _l("Début"),
    "finished_at": _l("Fin"), "items": _l("Éléments traités"), "errors": _l("Erreurs"), "message": _l("Message"),
    "display_number": _l("Numéro"), "signatory_name": _l("Signataire"), "balance": _l("Solde"),
    "account_status": _l("Espace locataire"), "signed_amount": _l("Montant"), "user.email": _l("Identifiant"),
    "household.client_number": _l("Numéro client"), "unit.street": _l("Adresse du lot"),
    "unit.city": _l("Ville du lot"), "lease.number": _l("Numéro de contrat"),
    WAITING: _l("En attente depuis"),
}


class EagerInterface(SQLAInterface):
    """Loads the many-to-one relations a list shows with one query each, instead of one query per row.
    `nulls_last` names order columns whose empty values come last, either way and on every database (SQLite puts
    them first ascending, PostgreSQL last)."""

    eager: tuple[str, ...] = ()

    def __init__(self, obj, session=None, nulls_last: tuple[str, ...] = ()):
        super().__init__(obj, session)
        self.nulls_last = frozenset(nulls_last)

    def apply_order_by(self, query, order_column, order_direction, *args, **kwargs):
        if order_column in self.nulls_last:  # `IS NULL` first (false before true), then Flask-AppBuilder's order
            query = query.order_by(self._get_attr(order_column).is_(None))
        return super().apply_order_by(query, order_column, order_direction, *args, **kwargs)

    def apply_all(self, query, *args, **kwargs):
        query = super().apply_all(query, *args, **kwargs)
        return query.options(*(selectinload(getattr(self.obj, name)) for name in self.eager))

    def _get_attr_value(self, item, col):
        # The waiting column is computed from the whole row (its status, category, dates) by its formatter: models
        # stay free of queue rules, and list, show and CSV export all read it the same way.
        if col == WAITING:
            return item
        return super()._get_attr_value(item, col)


class FilterClientNumber(BaseFilter):
    """Search a household's rows by its client number (a select of every household would weigh megabytes)."""

    name = _l("Égal à")  # the condition, shown next to the « Numéro client » field
    arg_name = "client"

    def apply(self, query, value):
        return query.join(Household, self.model.household_id == Household.id).filter(
            Household.client_number == str(value or "").strip())


class FilterPaymentIncident(BaseFilter):
    """A queue's base filter: the rows of households still marked with a payment incident (a subquery, not a join:
    the search by client number joins the household)."""

    name = "Payment incident"
    arg_name = "payment_incident"

    def apply(self, query, value):
        return query.filter(self.model.household.has(Household.payment_incident.is_(True)))


class CheckedArgumentsMixin:
    """What a Flask-AppBuilder model view takes from the URL without checking it, checked: junk is a 400 or a 404 in
    the portal's layout instead of a 500. For any ModelView whose tables have integer keys (the staff screens; FAB's
    own security screens could take it too, keeping their class names)."""

    def update_redirect(self):
        """Flask-AppBuilder keeps the last pages visited in the session cookie for its « Retour » links: a search
        URL of thousands of characters would push the cookie past the 4 KB a browser keeps (and sign the person
        out). Such a page is not remembered."""
        if len(request.url) <= MAX_REMEMBERED_URL:
            super().update_redirect()

    def _deserialize_pk_if_composite(self, pk):
        """Anything but an id in `/show/<pk>`, `/edit/<pk>`, ... is a 404, like a number past what the id column
        holds (it would fail in the database, a 500)."""
        return row_id(pk)

    @before_request
    def refuse_junk_arguments(self):
        """Flask-AppBuilder reads `page_<view>` and `psize_<view>` with int() and hands order columns and filter
        values to SQL as they come: junk there is a 400, not a 500. The arguments of every view are checked, since
        a show page lists its related views too."""
        views = {view.__class__.__name__: view for view in [self, *self._related_views]}
        for name, value in request.args.items(multi=True):
            if name.startswith(("page_", "psize_")):
                if not _NUMBER_RE.fullmatch(value) or int(value) > MAX_PAGE:
                    abort(400)
            elif name.startswith("_oc_") and name[4:] in views:
                if value not in views[name[4:]].order_columns:
                    abort(400)
            elif match := _FILTER_ARG_RE.fullmatch(name):
                self._check_filter_argument(int(match.group(1)), match.group(2), value)

    def _check_filter_argument(self, index: int, column: str, value: str) -> None:
        filters = self._filters._all_filters.get(column)
        if filters is None or value == "":
            return  # Flask-AppBuilder ignores both
        if index >= len(filters):
            abort(400)
        if isinstance(filters[index], FilterRelation):  # the related row's id
            if not _NUMBER_RE.fullmatch(value) or int(value) > MAX_ROW_ID:
                abort(400)
        elif self.datamodel.is_integer(column):
            try:
                number = int(value)
            except ValueError:
                return  # Flask-AppBuilder drops what int() cannot read
            if abs(number) > integer_bound(self.datamodel.list_columns[column].type):
                abort(400)
        elif getattr(filters[index], "read", None) is parse_money:
            try:
                parse_money(value)
            except MoneyError:
                abort(400)

    def _get_list_widget(self, filters, *args, page_size=None, **kwargs):
        """A page is at most MAX_PAGE_SIZE rows, whatever `psize_<view>` asks."""
        page_size = min(page_size or self.page_size, MAX_PAGE_SIZE)
        return super()._get_list_widget(filters, *args, page_size=page_size, **kwargs)

    # --- actions: Flask-AppBuilder's routes fail with a 500 on an unknown action and answer a refusal with a
    # redirect; here an unknown action or row is a 404 and an action the user may not run a 403, before anything runs.

    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name, pk):
        if not self.is_get_mutation_allowed():
            return super().action(name, pk)  # refused with a message (CSRF is on)
        return self._run_action(name, [pk], single=True)

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        return self._run_action(request.form.get("action", ""), request.form.getlist("rowid"), single=False)

    def _run_action(self, name: str, pks: list[str], single: bool):
        chosen = self.actions.get(name)
        if chosen is None:
            abort(404)
        if not self.appbuilder.sm.has_access(self.get_action_permission_name(name), self.class_permission_name):
            abort(403)
        items = [self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters) for pk in pks]
        if not items or any(item is None for item in items):
            abort(404)
        return chosen.func(items[0] if single else items)


class StaffModelView(CheckedArgumentsMixin, ModelView):
    """Base of the staff screens: French labels, translated enum selects, values that read like French on lists and
    show pages (typed from the columns, see `column_formatter`), and a CSV export of any filtered list."""

    page_size = 25
    label_columns = LABELS
    # No staff screen has file columns: Flask-AppBuilder's unscoped download route has no use here.
    exclude_route_methods = {"download"}
    list_template = "staff/list.html"  # Flask-AppBuilder's list with the « Exporter (CSV) » link
    # The export reads what the list reads: whoever may list a screen may export it (same permission, can_list).
    method_permission_name = {"export": "list"}
    # The type of a shown property (or of any column named here), as a SQLAlchemy type: {"balance": MONEY}.
    column_types: dict[str, sa.types.TypeEngine] = {}
    # List columns left out of the CSV export (links to other pages).
    export_exclude_columns: tuple[str, ...] = ()
    export_max_rows = EXPORT_MAX_ROWS

    def _init_properties(self):
        self.label_columns = dict(LABELS, **(self.label_columns or {}))
        # Every staff screen: a staff member of an agency sees and acts on its households' rows only (list, show,
        # edit, delete, actions and export all go through the base filters).
        self.base_filters = [["id", AgencyScopeFilter, lambda: None], *(self.base_filters or [])]
        super()._init_properties()
        self.datamodel.eager = tuple(sorted(set(self.datamodel.eager) | set(self._many_to_one_roots())))
        if "household" in self.search_columns:
            self.search_form_extra_fields = dict(self.search_form_extra_fields or {},
                                                 household=StringField(LABELS["client_number"]))
            by_number = [FilterClientNumber("household", self.datamodel)]
            self._filters._search_filters["household"] = self._filters._all_filters["household"] = by_number
        columns = self.datamodel.list_columns
        for name, column in columns.items():
            if self.datamodel.is_datetime(name):  # UTCDateTime included
                self._read_filter_values(name, read_moment)
            python_type = _python_type(column)
            if python_type is None:
                continue
            if issubclass(python_type, LabelledEnum):
                field = EnumSelectField(python_type, self.label_columns.get(name),
                                        validators=[OptionalValidator() if column.nullable else DataRequired()])
                self.add_form_extra_fields.setdefault(name, field)
                self.edit_form_extra_fields.setdefault(name, field)
            elif python_type is bool:  # Flask-AppBuilder makes a NOT NULL checkbox required: it could not be unticked
                field = BooleanField(self.label_columns.get(name))
                self.add_form_extra_fields.setdefault(name, field)
                self.edit_form_extra_fields.setdefault(name, field)
            elif python_type is int and not column.primary_key and not column.foreign_keys:
                bound = integer_bound(column.type)
                self.validators_columns.setdefault(name, [NumberRange(-bound, bound, message=INTEGER_RANGE)])
            elif python_type is Decimal:
                money = (column.type.precision, column.type.scale) == (MONEY.precision, MONEY.scale)
                validators = [OptionalValidator() if column.nullable else InputRequired(message=REQUIRED)]
                field = MoneyField(self.label_columns.get(name), validators) if money else NumberField(
                    self.label_columns.get(name), validators, column.type.precision, column.type.scale)
                self.add_form_extra_fields.setdefault(name, field)
                self.edit_form_extra_fields.setdefault(name, field)
                if money:
                    self._read_filter_values(name, parse_money)
        self._init_formatters()

    def _read_filter_values(self, name: str, read) -> None:
        for filters in (self._filters._search_filters, self._filters._all_filters):
            if name in filters:
                filters[name] = [reading_filter(flt.__class__, read)(name, self.datamodel) for flt in filters[name]]

    # --- values for people ----------------------------------------------------------------------------------------

    def _init_formatters(self) -> None:
        """A formatter for every column a list or a show page displays, from its type; the view's own win."""
        explicit = dict(self.formatters_columns or {})  # a copy: the class attribute is shared with subclasses
        if WAITING in self.list_columns:
            explicit.setdefault(WAITING, waiting_in_queue)
        shown = dict.fromkeys([*self.list_columns, *self.show_columns])
        typed = {name: self.column_type(name) for name in shown}
        self.formatters_columns = {name: _or_dash(column_formatter(typed[name])) for name in shown}
        self.formatters_columns.update(explicit)
        self._export_columns = [
            (name, self.label_columns.get(name, name),
             explicit.get(name) or column_formatter(typed[name], for_spreadsheet=True))
            for name in self.list_columns if name not in self.export_exclude_columns
        ]

    def column_type(self, name: str) -> sa.types.TypeEngine | None:
        """The SQLAlchemy type of a displayed column: declared in `column_types`, else the model's column, dotted
        names (`user.last_login`) through many-to-one relations; None for a property nobody typed."""
        if name in self.column_types:
            return self.column_types[name]
        *relations, leaf = name.split(".")
        mapper = sa.inspect(self.datamodel.obj)
        for relation in relations:
            if relation not in mapper.relationships:
                return None
            mapper = mapper.relationships[relation].mapper
        column = mapper.columns.get(leaf)
        return None if column is None else column.type

    def _many_to_one_roots(self) -> list[str]:
        """The relations the list reads (`household`, or `user` for `user.email`): loaded with the rows."""
        roots = dict.fromkeys(name.split(".")[0] for name in self.list_columns)
        return [root for root in roots
                if self.datamodel.is_relation_many_to_one(root) or self.datamodel.is_relation_one_to_one(root)]

    # --- CSV export of the list -----------------------------------------------------------------------------------

    @expose("/export/")
    @has_access
    def export(self):
        """The rows of the current search in the list's order, every page, as a CSV file French Excel opens:
        UTF-8 with a BOM, `;` between cells, the list's labels as headers."""
        order_column, order_direction = get_order_args().get(self.__class__.__name__, ("", ""))
        if not order_column and self.base_order:
            order_column, order_direction = self.base_order
        get_filter_args(self._filters)
        filters = self._filters.get_joined_filters(self._base_filters)  # a copy: the stream outlives the request
        eager = [selectinload(getattr(self.datamodel.obj, root)) for root in self._many_to_one_roots()]

        def rows():
            """Built when the stream reads it, on the stream's own session (closed at its end): the request's
            session is closed as soon as the response starts."""
            query = self.datamodel.session.query(self.datamodel.obj)
            return self.datamodel.apply_all(query, filters, order_column, order_direction).options(*eager)

        try:
            count = self.datamodel.query_count(self.datamodel.session.query(self.datamodel.obj), filters)
            rows()  # built once now: what Flask-AppBuilder refuses is a 400, not a broken download
        except FABException:
            abort(400)
        if count > self.export_max_rows:
            flash(_l("Cette recherche donne %(count)s lignes : l'export est limité à %(max)s lignes. "
                     "Affinez la recherche puis exportez de nouveau.",
                     count=format_decimal(count), max=format_decimal(self.export_max_rows)), "warning")
            return redirect(_with_query_string(url_for(f"{self.endpoint}.list")))
        log.info("CSV export of %s: %s rows for user %s", self.__class__.__name__, count, getattr(g.user, "id", None))
        response = Response(stream_with_context(self._csv_chunks(rows)), content_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{self._export_filename()}"'
        response.headers["Cache-Control"] = "no-store"
        return response

    def _csv_chunks(self, rows: Callable):
        names = [name for name, _, _ in self._export_columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        buffer.write(formatting.CSV_BOM)
        writer.writerow([formatting.spreadsheet_text(str(label)) for _, label, _ in self._export_columns])
        yield _drain(buffer)  # before any query: a response nobody reads holds no database connection
        for count, item in enumerate(rows().yield_per(EXPORT_CHUNK_ROWS), 1):
            values = self.datamodel.get_values_item(item, names)
            writer.writerow([_csv_cell(value, formatter)
                             for value, (_, _, formatter) in zip(values, self._export_columns)])
            if count % EXPORT_CHUNK_ROWS == 0:
                yield _drain(buffer)
        yield _drain(buffer)

    def _export_filename(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", unidecode(str(self.list_title or self.__class__.__name__)).lower())
        return f"{slug.strip('-') or 'export'}-{utcnow().astimezone(get_timezone()):%Y-%m-%d}.csv"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _with_query_string(url: str) -> str:
    query = request.query_string.decode("utf-8", "replace")
    return f"{url}?{query}" if query else url


def _is_empty(value) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, set)) and not value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _or_dash(formatter: Callable | None) -> Callable:
    """No value reads « — » (not `None` or an empty cell)."""

    def show(value):
        if _is_empty(value):
            return formatting.DASH
        return formatter(value) if formatter else value

    return show


def column_formatter(column_type, for_spreadsheet: bool = False) -> Callable | None:
    """How a value of that SQLAlchemy type reads: a Paris-time timestamp (`25/11/2026 20:38`), a date, an amount
    (`1 234,56 €`, or `1234,56` in a spreadsheet), another number, Oui/Non, an enum's label; None for the rest."""
    if isinstance(column_type, sa.TypeDecorator):  # UTCDateTime, EncryptedString
        column_type = column_type.impl
    if isinstance(column_type, sa.Enum):
        enum_class = column_type.enum_class
        return _enum_label(enum_class) if enum_class and issubclass(enum_class, LabelledEnum) else None
    if isinstance(column_type, sa.Boolean):
        return _yes_no
    if isinstance(column_type, sa.DateTime):  # ours are UTCDateTime; Flask-AppBuilder's are naive, local time
        return formatting.moment if column_type.timezone else formatting.local_moment
    if isinstance(column_type, sa.Date):
        return formatting.day
    if isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
        if (column_type.precision, column_type.scale) == (MONEY.precision, MONEY.scale):
            return formatting.plain_money if for_spreadsheet else formatting.money
        return formatting.plain_decimal if for_spreadsheet else formatting.number
    return None


def _csv_cell(value, formatter: Callable | None) -> str:
    """A number stays a number (`-1234,56`); anything else is text, made inert if a spreadsheet would run it."""
    if _is_empty(value):
        return ""
    if _is_number(value) and formatter in (None, formatting.plain_money, formatting.plain_decimal):
        return (formatter or formatting.plain_decimal)(value)
    text = formatter(value) if formatter else value
    if isinstance(text, Markup):
        text = text.striptags()
    return formatting.spreadsheet_text(str(text))


def row_id(value) -> int:
    """A primary key named by a URL or a form: digits, at most MAX_ROW_ID; anything else is a 404."""
    text = str(value)
    if not _NUMBER_RE.fullmatch(text) or int(text) > MAX_ROW_ID:
        abort(404)
    return int(text)


def integer_bound(column_type) -> int:
    """The largest value an integer column holds on every backend (PostgreSQL's smallint, integer, bigint)."""
    bits = 16 if isinstance(column_type, sa.SmallInteger) else 64 if isinstance(column_type, sa.BigInteger) else 32
    return 2 ** (bits - 1) - 1


def _enum_label(enum_class):
    """Flask-AppBuilder hands formatters the enum's value on some pages and the member on others."""

    def label(value):
        if value is None or value == "":
            return ""
        try:
            member = value if isinstance(value, enum_class) else enum_class(value)
        except ValueError:  # not one of its values: shown as it is rather than a 500
            return str(value)
        return str(member.label)

    return label


def waiting_in_queue(row) -> Markup | str:
    """« 3 h », « 2 j 4 h », « 104 j »: how long `row` has waited in its queue, then « en retard » (words, not only
    a colour) past the queue's promise; « — » for a row in no queue (a closed request...)."""
    now = utcnow()
    since = queues.waiting_since(row)
    if since is None:
        return formatting.DASH
    text = waiting_time(since, now)
    if queues.is_late(row, now):
        return Markup('{} <strong class="queue-late-mark">{}</strong>').format(text, _l("en retard"))
    return text


def waiting_time(since: datetime | date, now: datetime) -> str:
    """Hours under a day, days and hours under ten days, then days (a date, such as a reject's, counts days)."""
    if not isinstance(since, datetime):
        return str(_l("%(days)s j", days=format_decimal(max((now.date() - since).days, 0))))
    days, hours = divmod(max(int((now - since).total_seconds() // 3600), 0), 24)
    if not days:
        return str(_l("%(hours)s h", hours=hours))
    if days < 10 and hours:
        return str(_l("%(days)s j %(hours)s h", days=days, hours=hours))
    return str(_l("%(days)s j", days=format_decimal(days)))


def _yes_no(value) -> str:
    return str(_l("Oui")) if value else str(_l("Non"))


def _python_type(column):
    try:
        return column.type.python_type
    except (AttributeError, NotImplementedError):
        return None


def household_field(**kwargs):
    return NaturalKeyField(Household, "client_number", LABELS["client_number"],
                           not_found=_l("Aucun foyer ne porte ce numéro client."), **kwargs)


def unit_field(**kwargs):
    return NaturalKeyField(Unit, "reference", _l("Référence du lot"),
                           not_found=_l("Aucun lot ne porte cette référence."), **kwargs)


def lease_field(**kwargs):
    return NaturalKeyField(Lease, "number", _l("Numéro de contrat (6 chiffres)"),
                           not_found=_l("Aucun contrat ne porte ce numéro."), **kwargs)


def _check_lease_of_household(item) -> None:
    if item.lease is not None and item.household is not None and item.lease.household_id != item.household.id:
        raise ValueError(str(_l("Ce contrat n'appartient pas à ce foyer.")))


class AgencyStaffView(StaffModelView):
    """Which agencies a chargé de clientèle (role `Staff`) works for. Not named `Staff*`: administrators only
    (app.roles). A user is typed by sign-in address: a select would list every tenant."""

    datamodel = EagerInterface(StaffAgency)
    list_title = _l("Agents rattachés aux agences")
    show_title = add_title = edit_title = _l("Rattachement à une agence")
    list_columns = ["user", "agency"]
    search_columns = ["agency"]
    add_columns = edit_columns = ["user", "agency"]
    label_columns = {"user": _l("Agent (adresse de connexion)")}
    add_form_extra_fields = edit_form_extra_fields = {
        "user": NaturalKeyField(User, "email", _l("Agent (adresse de connexion)"),
                                not_found=_l("Aucun utilisateur ne se connecte avec cette adresse."),
                                validators=[DataRequired(message=REQUIRED)]),
    }


class StaffAgencyView(StaffModelView):
    datamodel = EagerInterface(Agency)
    list_title = _l("Agences")
    show_title = add_title = edit_title = _l("Agence")
    list_columns = ["code", "name", "city", "phone", "email"]
    search_columns = ["code", "name", "city"]
    add_columns = edit_columns = ["code", "name", "street", "complement", "postcode", "city", "phone", "email",
                                  "opening_hours"]
    base_permissions = NO_DELETE


class StaffResidenceView(StaffModelView):
    datamodel = EagerInterface(Residence)
    list_title = _l("Résidences")
    show_title = add_title = edit_title = _l("Résidence")
    list_columns = ["code", "name", "street", "city", "agency"]
    search_columns = ["code", "name", "city", "agency"]
    add_columns = edit_columns = ["code", "name", "agency", "street", "complement", "postcode", "city",
                                  "built_year", "has_lift"]
    base_permissions = NO_DELETE


class StaffUnitView(StaffModelView):
    datamodel = EagerInterface(Unit)
    list_title = _l("Lots")
    show_title = add_title = edit_title = _l("Lot")
    list_columns = ["reference", "kind", "typology", "street", "complement", "city", "residence"]
    search_columns = ["reference", "kind", "street", "city", "residence"]
    add_columns = edit_columns = ["reference", "kind", "residence", "street", "complement", "postcode", "city",
                                  "typology", "floor", "surface_m2"]
    base_permissions = NO_DELETE


class StaffLeaseView(StaffModelView):
    datamodel = EagerInterface(Lease)
    list_title = _l("Contrats")
    show_title = add_title = edit_title = _l("Contrat")
    list_columns = ["display_number", "household", "unit", "start_date", "end_date", "rent", "charges"]
    order_columns = ["start_date", "end_date", "rent"]
    search_columns = ["number", "household", "start_date", "end_date"]
    show_columns = ["display_number", "household", "unit", "start_date", "end_date", "rent", "charges",
                    "housing_benefit", "deposit", "created_at"]
    add_columns = edit_columns = ["number", "household", "unit", "start_date", "end_date", "rent", "charges",
                                  "housing_benefit", "deposit"]
    add_form_extra_fields = {"household": household_field(validators=[DataRequired()]),
                             "unit": unit_field(validators=[DataRequired()])}
    edit_form_extra_fields = add_form_extra_fields
    base_order = ("start_date", "desc")
    base_permissions = NO_DELETE


class StaffOccupantView(StaffModelView):
    datamodel = EagerInterface(Occupant)
    list_title = _l("Occupants")
    show_title = add_title = edit_title = _l("Occupant")
    list_columns = ["last_name", "first_name", "relation", "household", "arrival_date", "departure_date"]
    search_columns = ["last_name", "first_name", "household"]
    add_columns = edit_columns = ["household", "lease", "last_name", "first_name", "birth_date", "relation",
                                  "arrival_date", "departure_date"]
    add_form_extra_fields = {"household": household_field(validators=[DataRequired()]),
                             "lease": lease_field(validators=[OptionalValidator()])}
    edit_form_extra_fields = add_form_extra_fields

    def pre_add(self, item):
        _check_lease_of_household(item)

    pre_update = pre_add


class StaffLedgerEntryView(StaffModelView):
    """The rent account is append-only: a mistake is corrected by a new entry, never by editing one."""

    datamodel = EagerInterface(LedgerEntry)
    list_title = _l("Écritures du compte locataire")
    show_title = add_title = _l("Écriture")
    list_columns = ["entry_date", "household", "lease", "kind", "label", "signed_amount", "period", "due_date"]
    order_columns = ["entry_date", "due_date", "period"]
    search_columns = ["household", "entry_date", "kind", "period", "label"]
    show_columns = ["entry_date", "household", "lease", "kind", "direction", "amount", "rent_part", "charges_part",
                    "label", "period", "due_date", "external_ref", "created_at"]
    add_columns = ["household", "lease", "kind", "direction", "amount", "label", "entry_date", "period"]
    add_form_extra_fields = {"household": household_field(validators=[DataRequired()]),
                             "lease": lease_field(validators=[DataRequired()])}
    column_types = {"signed_amount": MONEY}
    base_order = ("entry_date", "desc")
    base_permissions = ["can_list", "can_show", "can_add"]

    def pre_add(self, item):
        _check_lease_of_household(item)
        if item.amount is None or item.amount <= 0:
            raise ValueError(str(_l("Le montant doit être positif.")))


class StaffDocumentView(StaffModelView):
    datamodel = EagerInterface(Document)
    list_title = _l("Documents")
    show_title = _l("Document")
    list_columns = ["created_at", "household", "lease", "kind", "period", "title"]
    search_columns = ["household", "kind", "period", "title"]
    show_columns = ["household", "lease", "kind", "period", "title", "original_filename", "created_at", "created_by"]
    base_order = ("created_at", "desc")
    base_permissions = READ_ONLY


class StaffInsuranceView(StaffModelView):
    datamodel = EagerInterface(InsuranceCertificate)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        return redirect(url_for("StaffInsuranceDeskView.detail", certificate_id=row_id(pk)))
    list_title = _l("Attestations d'assurance")
    show_title = _l("Attestation d'assurance")
    list_columns = ["created_at", "household", "insurer", "policy_number", "start_date", "end_date", "status"]
    search_columns = ["status", "household", "insurer", "end_date"]
    show_columns = ["household", "lease", "insurer", "policy_number", "start_date", "end_date", "status",
                    "decision_reason", "decided_at", "decided_by", "created_at"]
    base_order = ("created_at", "asc")
    base_permissions = READ_ONLY


class StaffInsuranceQueueView(StaffInsuranceView):
    """Certificates waiting for a decision, oldest first (target: 48 hours)."""

    list_title = _l("Attestations à valider (objectif : 48 heures)")
    base_filters = [["status", FilterEqual, ReviewStatus.PENDING]]
    list_columns = ["created_at", WAITING, "household", "insurer", "start_date", "end_date"]
    base_order = ("created_at", "asc")


class StaffMandateView(StaffModelView):
    datamodel = EagerInterface(DirectDebitMandate)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        return redirect(url_for("StaffMandateDeskView.detail", mandate_id=row_id(pk)))
    list_title = _l("Mandats de prélèvement")
    show_title = _l("Mandat de prélèvement")
    list_columns = ["reference", "household", "lease", "masked_iban", "debit_day", "status", "created_at"]
    search_columns = ["reference", "household", "status", "debit_day"]
    show_columns = ["reference", "household", "lease", "account_holder", "masked_iban", "bic", "bank_name",
                    "debit_day", "status", "signed_on", "activated_at", "last_collection_on", "decision_reason",
                    "created_at"]
    base_order = ("created_at", "desc")
    base_permissions = READ_ONLY


class StaffMandateQueueView(StaffMandateView):
    """Mandates waiting for the signed paper (« en attente du mandat signé »), oldest first."""

    list_title = _l("Mandats en attente de signature")
    base_filters = [["status", FilterEqual, MandateStatus.PENDING_SIGNATURE]]
    list_columns = ["created_at", WAITING, "reference", "household", "lease", "masked_iban", "debit_day"]
    base_order = ("created_at", "asc")


def _batch_file_link(batch_id):
    return Markup('<a href="{}">{}</a>').format(url_for("StaffMandateDeskView.batch_file", batch_id=batch_id),
                                                _l("Fichier pain.008"))


class StaffDirectDebitBatchView(LandlordWideMixin, StaffModelView):
    datamodel = EagerInterface(DirectDebitBatch)
    list_title = _l("Fichiers de prélèvement")
    show_title = _l("Fichier de prélèvement")
    list_columns = ["collection_date", "period", "count", "total", "schema", "id"]
    label_columns = {"collection_date": _l("Date de prélèvement"), "count": _l("Prélèvements"),
                     "total": _l("Total"), "schema": _l("Format"), "id": _l("Fichier")}
    formatters_columns = {"id": _batch_file_link}
    export_exclude_columns = ("id",)
    search_columns = ["collection_date", "period"]
    base_order = ("collection_date", "desc")
    base_permissions = READ_ONLY


def _reject_link(collection_id):
    return Markup('<a href="{}">{}</a>').format(url_for("StaffMandateDeskView.reject", collection_id=collection_id),
                                                _l("Enregistrer un rejet"))


class StaffDirectDebitCollectionView(StaffModelView):
    datamodel = EagerInterface(DirectDebitCollection)
    list_title = _l("Prélèvements")
    show_title = _l("Prélèvement")
    list_columns = ["collection_date", "household", "mandate", "period", "notified_amount", "amount", "status",
                    "end_to_end_id", "rejected_on", WAITING, "reject_reason", "id"]
    label_columns = {"batch": _l("Fichier"), "mandate": _l("Mandat"), "sequence_type": _l("Séquence"),
                     "collection_date": _l("Date de prélèvement"), "notified_amount": _l("Montant annoncé"),
                     "status": _l("Statut"),
                     "amount": _l("Montant prélevé"), "end_to_end_id": _l("Référence de bout en bout"),
                     "rejected_on": _l("Rejeté le"), "reject_reason": _l("Motif du rejet"), "id": _l("Rejet")}
    formatters_columns = {"id": _reject_link}
    export_exclude_columns = ("id",)
    search_columns = ["household", "period", "status", "collection_date", "rejected_on"]
    base_order = ("id", "desc")
    base_permissions = READ_ONLY


class StaffRejectQueueView(StaffDirectDebitCollectionView):
    """Rejected debits of households still marked with a payment incident, oldest reject first (an undated one
    last): the tenant is to be contacted within `queues.REJECT_DAYS` working days."""

    datamodel = EagerInterface(DirectDebitCollection, nulls_last=("rejected_on",))
    list_title = _l("Prélèvements rejetés à traiter")
    base_filters = [["status", FilterEqual, CollectionStatus.REJECTED], ["household", FilterPaymentIncident, None]]
    list_columns = ["rejected_on", WAITING, "household", "mandate", "period", "amount", "reject_reason"]
    base_order = ("rejected_on", "asc")


def _report_link(import_id):
    return Markup('<a href="{}">{}</a>').format(
        url_for("StaffDebitFileView.bank_answer_report", import_id=import_id), _l("Compte rendu"))


class StaffBankFileImportView(LandlordWideMixin, StaffModelView):
    datamodel = EagerInterface(BankFileImport)
    list_title = _l("Retours de la banque")
    list_columns = ["created_at", "message_type", "message_id", "filename", "applied", "to_review", "imported_by",
                    "id"]
    label_columns = {"message_type": _l("Message"), "message_id": _l("Identifiant"), "filename": _l("Fichier"),
                     "applied": _l("Rejets appliqués"), "to_review": _l("À vérifier"),
                     "imported_by": _l("Importé par"), "id": _l("Détail")}
    formatters_columns = {"id": _report_link}
    export_exclude_columns = ("id",)
    search_columns = ["message_type", "message_id", "created_at"]
    base_order = ("created_at", "desc")
    base_permissions = READ_ONLY


class StaffPaymentView(StaffModelView):
    datamodel = EagerInterface(PaymentTransaction)
    list_title = _l("Paiements par carte")
    show_title = _l("Paiement par carte")
    list_columns = ["created_at", "order_id", "household", "amount", "status", "bank_status"]
    search_columns = ["status", "household", "trans_day", "order_id", "created_at", "amount"]
    show_columns = ["order_id", "trans_id", "trans_day", "household", "lease", "amount", "currency", "ctx_mode",
                    "status", "bank_status", "bank_result", "trans_uuid", "notified_at", "review_reason",
                    "created_at"]
    base_order = ("created_at", "desc")
    base_permissions = READ_ONLY


class StaffPaymentReviewView(StaffPaymentView):
    """Bank notifications that did not match the payment we created: never credited, waiting for staff."""

    list_title = _l("Paiements à vérifier")
    base_filters = [["status", FilterEqual, PaymentStatus.REVIEW]]
    list_columns = ["created_at", WAITING, "order_id", "household", "amount", "bank_status", "review_reason"]
    base_order = ("created_at", "asc")


class StaffReconciliationView(LandlordWideMixin, BaseView):
    """Card payments confirmed by the bank, per UTC day, to match against the bank's daily remittance."""

    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        month = request.args.get("mois") or f"{utcnow():%Y-%m}"
        try:
            first = date(int(month[:4]), int(month[5:7]), 1)
        except ValueError:
            first = utcnow().date().replace(day=1)
        days = payment_days(first)
        return self.render_template("staff/reconciliation.html", days=days, month=first,
                                    total=sum((d.total for d in days), ZERO), count=sum(d.count for d in days))


class StaffRequestEventView(StaffModelView):
    datamodel = EagerInterface(RequestEvent)
    list_title = _l("Historique de la demande")
    show_title = _l("Étape de la demande")
    list_columns = ["created_at", "kind", "author_side", "author", "body", "new_status"]
    base_order = ("created_at", "asc")
    base_permissions = READ_ONLY


class StaffRequestView(StaffModelView):
    datamodel = EagerInterface(TenantRequest)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        return redirect(url_for("StaffRequestDeskView.detail", request_id=row_id(pk)))
    list_title = _l("Demandes")
    list_columns = ["number", "created_at", WAITING, "household", "agency", "category", "status", "assigned_to"]
    search_columns = ["number", "household", "status", "category", "kind", "agency", "created_at"]
    base_order = ("created_at", "desc")  # every request, newest first; the open ones are a queue of their own
    base_permissions = READ_ONLY


class StaffRequestQueueView(StaffRequestView):
    """Open requests (submitted, in progress, waiting for the tenant), oldest first; each category its promise."""

    list_title = _l("Demandes en cours")
    base_filters = [["status", FilterInFunction, lambda: requests.OPEN_STATUSES]]
    list_columns = ["created_at", WAITING, "number", "household", "agency", "category", "status", "assigned_to"]
    base_order = ("created_at", "asc")


class StaffTenantAccountView(StaffModelView):
    """Staff see whether and when a household's account was activated and last used; they can resend the
    activation email or disable the account, never see or set a password."""

    datamodel = EagerInterface(TenantAccount)
    list_title = _l("Comptes de l'espace locataire")
    show_title = _l("Compte de l'espace locataire")
    list_columns = ["household", "user.email", "user.active", "activated_at", "user.last_login"]
    search_columns = ["household", "activated_at", "created_at"]
    show_columns = ["household", "user.email", "user.active", "activated_at", "user.last_login", "locale",
                    "created_at"]
    base_permissions = READ_ONLY + ["can_resend_activation", "can_disable"]

    @action("resend_activation", _l("Renvoyer l'e-mail d'activation"),
            _l("Renvoyer l'e-mail d'activation à ces comptes ?"), "fa-envelope")
    def resend_activation(self, items):
        items = items if isinstance(items, list) else [items]
        sent = sum(accounts.staff_resend_activation(account, utcnow()) for account in items)
        flash(_l("E-mail d'activation renvoyé à %(count)s compte(s) en attente.", count=sent), "info")
        return redirect(self.get_redirect())

    @action("disable", _l("Désactiver le compte"), _l("Désactiver ces comptes ? Leurs sessions seront fermées."),
            "fa-ban")
    def disable(self, items):
        items = items if isinstance(items, list) else [items]
        for account in items:
            accounts.staff_disable(account, utcnow())
        flash(_l("%(count)s compte(s) désactivé(s).", count=len(items)), "info")
        return redirect(self.get_redirect())


# Recorded columns whose screen label has another name (app.services.audit records `iban` masked).
AUDIT_LABELS = {"active": LABELS["user.active"], "iban": LABELS["masked_iban"]}


def _audit_field_label(name: str):
    return AUDIT_LABELS.get(name) or LABELS.get(name) or LABELS.get(name.removesuffix("_id")) or name


def _audit_value(column: sa.Column | None, value) -> str:
    """A recorded value (enum name, ISO date, amount as text) read like the other screens show it."""
    if _is_empty(value):
        return formatting.DASH
    column_type = column.type if column is not None else None
    stored = column_type.impl if isinstance(column_type, sa.TypeDecorator) else column_type
    try:
        if isinstance(stored, sa.Enum) and stored.enum_class is not None:
            value = stored.enum_class[value]
        elif isinstance(stored, sa.DateTime):
            value = datetime.fromisoformat(value)
        elif isinstance(stored, sa.Date):
            value = date.fromisoformat(value)
        elif isinstance(stored, sa.Numeric) and not isinstance(stored, sa.Float):
            value = Decimal(value)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return str(value)  # recorded before a change of type: shown as it was recorded
    formatter = column_formatter(column_type) if column_type is not None else None
    return str(formatter(value)) if formatter else str(value)


def _audit_changes(rows) -> Markup:
    """« Label : before → after », one line per changed column."""
    lines = Markup("\n").join(
        Markup("<li>{} : {} → {}</li>").format(_audit_field_label(name), _audit_value(column, before),
                                              _audit_value(column, after))
        for name, column, before, after in rows)
    return Markup('<ul class="list-unstyled">{}</ul>').format(lines)


class StaffAuditEventView(StaffModelView):
    """A household's history (tab « Historique »): what staff changed, who and when, newest first
    (app.services.audit writes it). Read-only by construction: the list is its only page, no route changes a row."""

    datamodel = EagerInterface(AuditEvent)
    list_title = _l("Historique")
    list_columns = ["created_at", "user", "summary", "changed_columns"]
    label_columns = {"created_at": _l("Date"), "user": _l("Agent"), "summary": _l("Action"),
                     "changed_columns": _l("Avant → après")}
    formatters_columns = {"changed_columns": _audit_changes}
    search_columns = ["household", "created_at", "action", "entity_type"]
    order_columns = ["created_at"]
    base_order = ("created_at", "desc")
    base_permissions = ["can_list"]
    exclude_route_methods = {"show", "add", "edit", "delete", "action", "action_post", "download"}


class StaffHouseholdView(StaffModelView):
    """The households list and the edit form; a household opens on its page (app.staff.household), where
    everything about it is on one screen."""

    datamodel = EagerInterface(Household)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        return redirect(url_for("StaffHouseholdFileView.detail", household_id=row_id(pk)))
    list_title = _l("Foyers")
    add_title = edit_title = _l("Foyer")
    list_columns = ["client_number", "signatory_last_name", "signatory_first_name", "billing_city", "email",
                    "agency"]
    search_columns = ["client_number", "signatory_last_name", "signatory_first_name", "email", "billing_city",
                      "agency", "payment_incident"]
    add_columns = edit_columns = [
        "client_number", "agency", "signatory_civility", "signatory_last_name", "signatory_first_name", "email",
        "phone", "professional_situation", "billing_street", "billing_complement", "billing_postcode",
        "billing_city", "paperless_consent", "payment_incident",
    ]
    base_permissions = NO_DELETE


class StaffJobRunView(LandlordWideMixin, StaffModelView):
    datamodel = EagerInterface(JobRun)
    list_title = _l("Traitements planifiés")
    show_title = _l("Traitement planifié")
    list_columns = ["job_name", "started_at", "finished_at", "status", "items", "errors"]
    search_columns = ["job_name", "status", "started_at"]
    base_order = ("started_at", "desc")
    base_permissions = READ_ONLY
