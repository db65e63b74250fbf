"""The tools the workflow tests provision, started once per session the way the local stack starts
them (local/tools/), and the environment the step functions read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local import moto_stack
from local.tools import jupyterhub, prefect, superset, workspace


def start_all(state_dir: Path, moto_url: str, prefix: str = "/apranova/wf") -> tuple[dict[str, str], list[Any]]:
    ssm = moto_stack.client("ssm", moto_url)
    handles: list[Any] = []
    superset_handle = superset.start(None)
    handles.append(superset_handle)
    superset.bootstrap_superset(ssm, prefix, superset_handle)
    hub = jupyterhub.start(state_dir)
    handles.append(hub)
    jupyterhub.bootstrap_jupyterhub(ssm, prefix, hub)
    flows = prefect.start(state_dir)
    handles.append(flows)
    prefect.bootstrap_prefect(ssm, prefix, flows)
    env = dict(workspace.bootstrap_workspace(moto_url, prefix))
    return env, handles
