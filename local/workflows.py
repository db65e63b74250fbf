"""The state machines CDK synthesizes, installed in moto with their Lambda tasks dispatched to the
in-repo step handlers (docs/principles.md §6). The local stack and the workflow tests both use this, so what
runs locally is the definition that is deployed.

``python -m local.workflows`` synthesizes (bundling skipped) and prints the definitions; the local
stack caches them under ``.build/``, keyed by a hash of the code that shapes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.provision.catalog import STEP_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_PREFIX = "apranova-"
# Logical id prefixes of the machines in the template (cdk/constructs/workflows.py).
MACHINES = {"enrollment": "WorkflowsEnrollment", "deprovision": "WorkflowsDeprovision"}
_MODULE_TO_STEP = {module: step for step, module in STEP_FUNCTIONS.items()}
# What the definitions are built from: a change here means a new synthesis.
_SOURCES = (
    "cdk/constructs/workflows.py",
    "functions/provision/catalog.py",
    "layers/common/python/apranova/workflow_inputs.py",
    "constraints.txt",
)


def extract(template: Mapping[str, Any]) -> dict[str, Any]:
    """From a synthesized template: each machine's ``DefinitionString`` (an ``Fn::Join``) and the
    step name of every Lambda the definitions reference."""
    resources = template["Resources"]
    steps = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            module = str(resource["Properties"].get("Handler", "")).removesuffix(".lambda_handler")
            if module in _MODULE_TO_STEP:
                steps[logical_id] = _MODULE_TO_STEP[module]
    machines = {}
    for key, prefix in MACHINES.items():
        (definition,) = [
            r["Properties"]["DefinitionString"]
            for logical_id, r in resources.items()
            if r["Type"] == "AWS::StepFunctions::StateMachine" and logical_id.startswith(prefix)
        ]
        machines[key] = definition
    return {"machines": machines, "steps": steps}


def resolve(definition: Any, arns: dict[str, str]) -> str:
    """The definition with each ``Fn::GetAtt [<lambda>, Arn]`` replaced by that step's ARN."""
    if isinstance(definition, str):
        return definition
    parts = definition["Fn::Join"][1]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif "Fn::GetAtt" in part:
            out.append(arns[part["Fn::GetAtt"][0]])
        else:
            raise ValueError(f"cannot resolve {part} in a state machine definition")
    return "".join(out)


def synthesize() -> dict[str, Any]:
    """Synthesizes the CDK app (no bundling) and extracts the workflows."""
    node = ROOT / "node_modules" / ".bin" / "node"
    if node.exists():
        os.environ.setdefault("JSII_NODE", str(node))
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from aws_cdk import assertions

    from cdk.app import build

    with tempfile.TemporaryDirectory() as outdir:
        _app, stack = build({"aws:cdk:bundling-stacks": []}, outdir=outdir)
        return extract(assertions.Template.from_stack(stack).to_json())


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


CACHE_DIR = ROOT / ".build"


def cache_path() -> Path:
    return CACHE_DIR / f"workflows-{source_hash()}.json"


def store(workflows: dict[str, Any]) -> Path:
    """Keeps ``workflows`` as the cache for the current sources (the tests store their synthesis)."""
    CACHE_DIR.mkdir(exist_ok=True)
    path = cache_path()
    for old in CACHE_DIR.glob("workflows-*.json"):
        if old != path:
            old.unlink(missing_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(workflows))
    os.replace(tmp, path)
    return path


def cached() -> dict[str, Any]:
    """The synthesized workflows, synthesized again only when the sources changed."""
    path = cache_path()
    if path.exists():
        return json.loads(path.read_text())
    workflows = synthesize()
    store(workflows)
    return workflows


def install(moto_url: str, workflows: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, str]:
    """Registers every step function in moto (dispatched to its handler) and creates or updates
    the state machines; returns their ARNs by key (enrollment, deprovision)."""
    from local import moto_stack

    arns = {
        logical_id: moto_stack.register_function(
            moto_url, FUNCTION_PREFIX + step, f"{STEP_FUNCTIONS[step]}.lambda_handler"
        )
        for logical_id, step in workflows["steps"].items()
    }
    sfn = moto_stack.client("stepfunctions", moto_url)
    iam = moto_stack.client("iam", moto_url)
    names = names or {key: f"apranova-local-{key}" for key in MACHINES}
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    out = {}
    for key, definition in workflows["machines"].items():
        body = resolve(definition, arns)
        name = names[key]
        if name in existing:
            sfn.update_state_machine(stateMachineArn=existing[name], definition=body)
            out[key] = existing[name]
        else:
            role = moto_stack.states_role(iam)
            out[key] = sfn.create_state_machine(name=name, definition=body, roleArn=role)["stateMachineArn"]
    return out


if __name__ == "__main__":
    json.dump(synthesize(), sys.stdout, indent=2)
