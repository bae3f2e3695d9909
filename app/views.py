"""Registration hub: every view of the portal is registered here, the way Superset's `init_views()` does."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _l

from app.staff import accounting, debits, desk, home, household, search, second_factor
from app.staff import views as staff
from app.tenant.account_views import AccountView
from app.tenant.pages import (
    CertificateCheckView, TenantContractView, TenantDocumentsView, TenantPaymentView, TenantRequestsView,
)
from app.tenant.profile_views import TenantProfileView

# (view, menu name, label, icon, category)
STAFF_MENU = [
    (staff.StaffHouseholdView, "StaffHouseholds", _l("Foyers"), "fa-users", "StaffCustomers"),
    (staff.StaffLeaseView, "StaffLeases", _l("Contrats"), "fa-file-contract", "StaffCustomers"),
    (staff.StaffOccupantView, "StaffOccupants", _l("Occupants"), "fa-user", "StaffCustomers"),
    (staff.StaffTenantAccountView, "StaffAccounts", _l("Comptes portail"), "fa-id-card", "StaffCustomers"),
    (staff.StaffRequestQueueView, "StaffRequestQueue", _l("Demandes en cours"), "fa-inbox", "StaffFollowUp"),
    (staff.StaffRequestView, "StaffRequests", _l("Demandes"), "fa-comments", "StaffFollowUp"),
    (staff.StaffInsuranceQueueView, "StaffInsuranceQueue", _l("Attestations à valider"), "fa-check",
     "StaffFollowUp"),
    (staff.StaffInsuranceView, "StaffInsurance", _l("Attestations d'assurance"), "fa-shield-alt", "StaffFollowUp"),
    (staff.StaffDocumentView, "StaffDocuments", _l("Documents"), "fa-file-pdf", "StaffFollowUp"),
    (staff.StaffLedgerEntryView, "StaffLedger", _l("Écritures"), "fa-book", "StaffAccounting"),
    (staff.StaffPaymentView, "StaffPayments", _l("Paiements par carte"), "fa-credit-card", "StaffAccounting"),
    (staff.StaffPaymentReviewView, "StaffPaymentReview", _l("Paiements à vérifier"), "fa-exclamation-triangle",
     "StaffAccounting"),
    (staff.StaffReconciliationView, "StaffReconciliation", _l("Rapprochement carte"), "fa-balance-scale",
     "StaffAccounting"),
    (staff.StaffMandateQueueView, "StaffMandateQueue", _l("Mandats à activer"), "fa-signature", "StaffAccounting"),
    (staff.StaffMandateView, "StaffMandates", _l("Mandats de prélèvement"), "fa-university", "StaffAccounting"),
    (staff.StaffDirectDebitBatchView, "StaffDebitBatches", _l("Fichiers de prélèvement"), "fa-file-code",
     "StaffAccounting"),
    (staff.StaffRejectQueueView, "StaffRejectQueue", _l("Prélèvements rejetés à traiter"), "fa-exclamation-circle",
     "StaffAccounting"),
    (staff.StaffDirectDebitCollectionView, "StaffDebitCollections", _l("Prélèvements et rejets"), "fa-undo",
     "StaffAccounting"),
    (debits.StaffDebitFileView, "StaffDebitFile", _l("Préparer un fichier de prélèvement"), "fa-file-export",
     "StaffAccounting"),
    (staff.StaffBankFileImportView, "StaffBankAnswers", _l("Retours de la banque"), "fa-file-import",
     "StaffAccounting"),
    (accounting.StaffAccountingExportView, "StaffAccountingExport", _l("Export comptable"), "fa-file-csv",
     "StaffAccounting"),
    (staff.StaffAgencyView, "StaffAgencies", _l("Agences"), "fa-building", "StaffEstate"),
    (staff.StaffResidenceView, "StaffResidences", _l("Résidences"), "fa-city", "StaffEstate"),
    (staff.StaffUnitView, "StaffUnits", _l("Lots"), "fa-home", "StaffEstate"),
    (staff.StaffJobRunView, "StaffJobs", _l("Traitements planifiés"), "fa-clock", "StaffOperations"),
]

STAFF_CATEGORIES = {
    "StaffCustomers": _l("Clientèle"),
    "StaffFollowUp": _l("Suivi"),
    "StaffAccounting": _l("Comptabilité"),
    "StaffEstate": _l("Patrimoine"),
    "StaffOperations": _l("Exploitation"),
}


def register_views(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(home.StaffHomeView, "StaffHome", label=_l("Files de travail"), icon="fa-tasks")
    # Administrators only (not a Staff* view): which agencies each chargé de clientèle works for.
    appbuilder.add_view(staff.AgencyStaffView, "AgencyStaff", label=_l("Agents des agences"), icon="fa-user-tie",
                        category="Security")
    for view, name, label, icon, category in STAFF_MENU:
        appbuilder.add_view(view, name, label=label, icon=icon, category=category,
                            category_label=STAFF_CATEGORIES[category])
    appbuilder.add_view_no_menu(staff.StaffRequestEventView)
    appbuilder.add_view_no_menu(staff.StaffAuditEventView)
    appbuilder.add_view_no_menu(desk.StaffRequestDeskView)
    appbuilder.add_view_no_menu(search.StaffSearchView)
    appbuilder.add_view_no_menu(household.StaffHouseholdFileView)
    appbuilder.add_view_no_menu(second_factor.StaffSecondFactorView)
    current_app.before_request(second_factor.require_second_factor)
    appbuilder.add_view_no_menu(desk.StaffInsuranceDeskView)
    appbuilder.add_view_no_menu(desk.StaffMandateDeskView)

    account_view = appbuilder.add_view_no_menu(AccountView)
    # Registration and recovery forms: per-address limit on submissions (the per-account and per-client-number
    # throttles live in the database, see app.services.throttle).
    appbuilder.sm.limiter.limit(lambda: current_app.config["ACCOUNT_FORMS_RATE_LIMIT"], methods=["POST"])(
        account_view.blueprint)
    for view in (TenantProfileView, TenantContractView, TenantDocumentsView, TenantPaymentView, TenantRequestsView,
                 CertificateCheckView):
        appbuilder.add_view_no_menu(view)
