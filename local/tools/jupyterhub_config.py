"""JupyterHub configuration for the local stack and the tests (``local/tools/jupyterhub.py`` runs it).

Everything machine- or run-specific comes from ``APRANOVA_JUPYTERHUB_*`` environment variables that
``start`` sets. The provisioner is a JupyterHub *service* whose token has the role
``apranova-provisioner``: ``admin:users`` (create, read, delete users), ``servers`` (start, stop
and delete their servers) and ``tokens`` (their one-time sign-in tickets), nothing else. Students sign
in with the tools API's one-time link, or with the dummy authenticator and the one local password;
only users the provisioner created may sign in. Servers are JupyterLab processes
run as this OS user (``SimpleLocalProcessSpawner``), homes under the state directory.
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

env = os.environ
state = env["APRANOVA_JUPYTERHUB_STATE"]

c.JupyterHub.bind_url = f"http://127.0.0.1:{env['APRANOVA_JUPYTERHUB_PORT']}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{env['APRANOVA_JUPYTERHUB_HUB_PORT']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['APRANOVA_JUPYTERHUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["APRANOVA_JUPYTERHUB_PROXY_COMMAND"]]  # its token: CONFIGPROXY_AUTH_TOKEN
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{state}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the students' servers

c.JupyterHub.services = [{"name": "apranova-provisioner", "api_token": env["APRANOVA_JUPYTERHUB_API_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "apranova-provisioner",
        "description": "ApraNova enrollment: create and delete students and their servers",
        # tokens: the one-minute sign-in tickets of the students (no scopes of their own).
        "scopes": ["admin:users", "servers", "tokens"],
        "services": ["apranova-provisioner"],
    }
]

# The dummy password login, plus the one-time sign-in links of the tools API (jupyterhub_login.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jupyterhub_login import TicketDummyAuthenticator  # noqa: E402

c.JupyterHub.authenticator_class = TicketDummyAuthenticator
c.DummyAuthenticator.password = env["APRANOVA_JUPYTERHUB_LOGIN_PASSWORD"]
c.Authenticator.allow_all = False
c.Authenticator.allow_existing_users = True  # the provisioned students, and no one else
c.Authenticator.admin_users = {name for name in env.get("APRANOVA_JUPYTERHUB_ADMIN_USERS", "").split(",") if name}

c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = f"{state}/home/{{username}}"
c.Spawner.cmd = [env["APRANOVA_JUPYTERHUB_SINGLEUSER_COMMAND"]]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
if os.geteuid() == 0:  # Jupyter refuses root without this; the local stack may run as root
    c.Spawner.args = ["--allow-root"]
