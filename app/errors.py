"""Error pages: every HTTP error a person can meet (400, 403, 404, 405, 413, 429, 500) in the portal's layout and
their language, with a way back; a JSON body for a client that asks for JSON.

A 500 never shows a trace. Every error page shows a reference: the request's id (app/observability.py), which is
also the response's `X-Request-ID` header and the `request_id` of every log line of that request, including the
one that carries the exception (`PortalFlask.log_exception`, which names it in its message too), so the operator
finds the lines from the reference a person reads out on the phone.
"""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, InternalServerError

from app.observability import request_id

CODES = (400, 403, 404, 405, 413, 429, 500)
TEXTS = {
    400: (_l("Requête non valide"), _l("Le formulaire ou le lien utilisé n'est pas valide (il a peut-être expiré). "
                                       "Revenez à la page précédente, rechargez-la et réessayez.")),
    403: (_l("Accès refusé"), _l("Vous n'avez pas accès à cette page.")),
    404: (_l("Page introuvable"), _l("Cette page n'existe pas ou n'est plus disponible.")),
    405: (_l("Page à ouvrir depuis son formulaire"),
          _l("Cette adresse reçoit un formulaire : elle ne s'ouvre pas seule, par exemple après un rechargement de "
             "la page. Revenez à la page précédente.")),
    413: (_l("Envoi trop volumineux"), _l("L'ensemble des fichiers envoyés dépasse %(megabytes)s Mo. Envoyez des "
                                          "fichiers plus légers (une photo en qualité normale, un PDF de quelques "
                                          "pages), ou en plusieurs fois.")),
    429: (_l("Trop de tentatives"), _l("Trop de demandes sont venues de votre connexion. Attendez quelques minutes "
                                       "puis réessayez.")),
    500: (_l("Une erreur est survenue"), _l("Nous n'avons pas pu afficher cette page. Rien n'a été enregistré à "
                                            "moitié : réessayez dans quelques minutes. Si l'erreur revient, "
                                            "donnez cette référence à votre agence.")),
}
KEPT_HEADERS = ("Allow", "Retry-After")  # what the status needs; never the exception's own body


class PortalFlask(Flask):
    def log_exception(self, exc_info) -> None:
        """The exception's log line carries the reference the 500 page shows: the request's id."""
        if not has_request_context():
            return super().log_exception(exc_info)
        g.error_reference = request_id()
        self.logger.error("Exception on %s [%s] (référence %s)", request.path, request.method, g.error_reference,
                          exc_info=exc_info)


def error_page(error: HTTPException):
    code = error.code if error.code in TEXTS else 500
    from app.extensions import db

    if code == 500:
        db.session.rollback()  # the failed request's transaction: nothing half-written, and the menu can read
    title, message = TEXTS[code]
    message = message % {"megabytes": current_app.config.get("MAX_CONTENT_LENGTH", 0) // (1024 * 1024)} \
        if code == 413 else str(message)
    reference = request_id()
    headers = {name: value for name, value in error.get_headers() if name in KEPT_HEADERS}
    if request.accept_mimetypes.best == "application/json":
        body = {"error": str(title), "message": message} | ({"reference": reference} if reference else {})
        return jsonify(body), code, headers
    try:
        return _render(code, title, message, reference), code, headers
    except Exception:  # the layout itself failed (the database is down): a plain page, still without a trace
        current_app.logger.exception("the error page of a %s failed", code)
        page = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{message}</p>"
        if reference:
            page += "<p>" + _("Référence de l'erreur :") + f" {reference}</p>"
        return page, code, headers


def _render(code: int, title, message: str, reference: str | None) -> str:
    from flask_login import current_user

    appbuilder = current_app.appbuilder
    g.setdefault("user", current_user)  # the menu needs it; a refusal by CSRFProtect comes before FAB sets it
    return render_template("errors.html", code=code, title=title, message=message, reference=reference,
                           appbuilder=appbuilder, base_template=appbuilder.base_template)


def init_app(app: Flask) -> None:
    for code in CODES:
        app.register_error_handler(code, error_page)
    app.register_error_handler(InternalServerError, error_page)
