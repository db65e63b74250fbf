"""JupyterHub's side of the one-time sign-in link the tools API hands a student
(``GET /api/tools/jupyter-access/``; ``JupyterHubProvisioner.sign_in_link``).

``GET /hub/apranova-login?ticket=...&next=/user/<name>/`` signs in the owner of ``ticket`` and sends
them to ``next`` (only a path under their own server; else the hub's home). A ticket is a hub API
token of the student's, created by the provisioner service through the hub's REST API with the note
``apranova-sign-in``, no scopes and a one-minute lifetime; the hub's own token table checks it (an
expired token is not found) and the first use deletes it, so a link works once. JupyterHub itself
accepts no token in a URL (``JUPYTERHUB_ALLOW_TOKEN_IN_URL`` is off by default since 5.0): a
ticket that is spent on arrival and grants nothing through the API is what travels instead.

The local stack's hub uses ``TicketDummyAuthenticator`` (the dummy password login as well); a
deployed hub adds ``TicketLoginMixin`` to its own authenticator class (docs/operations.md).
"""

from jupyterhub import orm
from jupyterhub.auth import DummyAuthenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

SIGN_IN_NOTE = "apranova-sign-in"  # the provisioner's ``SIGN_IN_NOTE``


class TicketLoginHandler(BaseHandler):
    async def get(self) -> None:
        ticket = self.get_argument("ticket", "")
        found = orm.APIToken.find(self.db, ticket, kind="user") if ticket else None
        if found is None or found.note != SIGN_IN_NOTE or found.user is None:
            raise web.HTTPError(403, "This sign-in link is not valid: it was used already or it expired.")
        name = found.user.name
        self.db.delete(found)  # spent
        self.db.commit()
        user = self.user_from_username(name)
        self.set_login_cookie(user)
        own = url_path_join(self.base_url, "user", user.escaped_name) + "/"
        wanted = self.get_argument("next", "")
        self.redirect(wanted if wanted.startswith(own) else url_path_join(self.hub.base_url, "home"))


class TicketLoginMixin:
    """Adds the sign-in page to an authenticator (under the hub's prefix: ``/hub/apranova-login``)."""

    def get_handlers(self, app):  # noqa: ANN001, ANN201 - JupyterHub's signature
        return [*super().get_handlers(app), ("/apranova-login", TicketLoginHandler)]


class TicketDummyAuthenticator(TicketLoginMixin, DummyAuthenticator):
    pass
