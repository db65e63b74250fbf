"""Issue 19: the shared tools and the workspaces behind one authenticated front door, in both stages.

Production is synthesized from the example context (no tool URL in it), with cdk-nag; a dev stage
with a tools domain and a certificate ARN likewise (environment-agnostic). Each test reads what a
reviewer would check: the services and their pinned images, the load balancer's HTTPS listener and
its Cognito action per host, who may reach whom, the URLs the stack hands on, and that no link to a
private IP is left anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from apranova import inventory
from cdk.constructs.shared_tools import DB_CA_FILE, TOOL_DATABASE_NAMES
from tests.infra.stack_support import flatten, function_props, resources

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "cdk/context/prod.example.json").read_text())
DEV_DOOR = {
    "toolsDomain": "tools.dev.apranova.example",
    "toolsCertificateArn": "arn:aws:acm:eu-west-1:111122223333:certificate/12345678-1234-1234-1234-123456789012",
}
HOSTS = ("jupyter", "superset", "prefect", "workspace")


class Door:
    def __init__(self, stack, assembly_dir: str) -> None:
        self.stack = stack
        self.main = Template.from_stack(stack)
        self.nested = Template.from_stack(stack.shared_tools)
        self.domain = stack.shared_tools.front_door.domain
        self.report = json.loads((Path(assembly_dir) / "validation-report.json").read_text())
        self.raw_main = json.dumps(self.main.to_json())
        self.raw_nested = json.dumps(self.nested.to_json())

    def of(self, type_: str) -> dict[str, dict[str, Any]]:
        return resources(self.nested, type_)


def _synth(context: dict[str, Any], tmp_path_factory) -> Door:
    from cdk.app import build

    out = str(tmp_path_factory.mktemp("cdk.out"))
    app, stack = build({"aws:cdk:bundling-stacks": [], **context}, outdir=out)
    app.synth()  # cdk-nag runs here and raises on any finding without a reason
    return Door(stack, out)


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> Door:
    return _synth({"stage": "prod", **EXAMPLE}, tmp_path_factory)


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Door:
    return _synth(DEV_DOOR, tmp_path_factory)


@pytest.fixture(scope="module", params=["dev", "prod"])
def door(request) -> Door:
    return request.getfixturevalue(request.param)


def test_prod_example_context_has_no_tool_url_and_synthesizes(prod) -> None:
    assert not {"supersetUrl", "jupyterhubUrl", "prefectUrl"} & set(EXAMPLE)
    assert prod.report["pluginReports"][0]["violations"] == []


def test_three_tools_and_the_proxy_run_as_fargate_services_in_private_subnets(door) -> None:
    services = door.of("AWS::ECS::Service")
    assert len(services) == 4
    for service in services.values():
        props = service["Properties"]
        assert props["LaunchType"] == "FARGATE"
        assert props["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    families = {t["Properties"]["Family"].rsplit("-", 1)[-1] for t in door.of("AWS::ECS::TaskDefinition").values()}
    assert {"superset", "prefect", "jupyterhub", "proxy", "notebook"} <= families


def test_prod_images_come_from_the_pull_through_caches_pinned_by_digest(prod) -> None:
    images = [
        flatten(c["Image"])
        for t in prod.of("AWS::ECS::TaskDefinition").values()
        for c in t["Properties"]["ContainerDefinitions"]
    ]
    digests = EXAMPLE["toolImageDigests"]
    ecr = "111122223333.dkr.ecr.eu-west-1.<AWS::URLSuffix>"
    assert f"{ecr}/quay-prod/jupyterhub/jupyterhub@{digests['jupyterhub']}" in images
    assert f"{ecr}/dockerhub-prod/apache/superset@{digests['superset']}" in images
    assert f"{ecr}/dockerhub-prod/prefecthq/prefect@{digests['prefect']}" in images
    (rule,) = prod.of("AWS::ECR::PullThroughCacheRule").values()
    assert rule["Properties"]["UpstreamRegistryUrl"] == "quay.io"


def test_one_https_listener_signs_every_host_in_with_cognito(door) -> None:
    (alb,) = door.of("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Scheme"] == "internet-facing"
    listeners = door.of("AWS::ElasticLoadBalancingV2::Listener")
    assert [listener["Properties"]["Protocol"] for listener in listeners.values()] == ["HTTPS"]
    (listener,) = listeners.values()
    assert listener["Properties"]["Port"] == 443 and listener["Properties"]["Certificates"]
    signed_in, open_paths = {}, {}
    for rule in door.of("AWS::ElasticLoadBalancingV2::ListenerRule").values():
        conditions = {c["Field"]: c for c in rule["Properties"]["Conditions"]}
        (host,) = conditions["host-header"]["HostHeaderConfig"]["Values"]
        actions = [a["Type"] for a in rule["Properties"]["Actions"]]
        if "path-pattern" in conditions:
            open_paths[host] = conditions["path-pattern"]["PathPatternConfig"]["Values"]
            assert actions == ["forward"]
        else:
            signed_in[host] = actions
    assert signed_in == {f"{h}.{door.domain}": ["authenticate-cognito", "forward"] for h in HOSTS}
    # Only the tools' own machine APIs skip Cognito (each checks its credentials); never the workspace.
    assert open_paths == {
        f"jupyter.{door.domain}": ["/hub/api/*"],
        f"superset.{door.domain}": ["/api/*"],
        f"prefect.{door.domain}": ["/api/*"],
    }
    (client,) = door.of("AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["GenerateSecret"] is True
    assert sorted(client["Properties"]["CallbackURLs"]) == sorted(
        f"https://{h}.{door.domain}/oauth2/idpresponse" for h in HOSTS
    )
    assert door.of("AWS::Cognito::UserPoolDomain")


def test_the_stack_fills_the_tool_urls_and_the_workspace_link_is_the_proxy(door) -> None:
    urls = {
        p["Properties"]["Name"]: p["Properties"]["Value"]
        for p in door.of("AWS::SSM::Parameter").values()
        if p["Properties"]["Name"].endswith("/url")
    }
    stage = door.stack.node.try_get_context("stage") or "dev"
    assert urls == {
        f"/apranova/{stage}/tools/{tool}/url": f"https://{host}.{door.domain}"
        for tool, host in (("superset", "superset"), ("prefect", "prefect"), ("jupyterhub", "jupyter"))
    }
    env = function_props(door.main, "tools")["Environment"]["Variables"]
    assert env["WORKSPACE_URL_TEMPLATE"] == f"https://workspace.{door.domain}/"
    assert "private_ip" not in door.raw_main and "private_ip" not in door.raw_nested


def _rules(template, type_: str, group_suffix: str) -> list[dict[str, Any]]:
    return [
        flatten(r["Properties"])
        for r in resources(template, type_).values()
        if group_suffix in json.dumps(r["Properties"].get("GroupId"))
    ]


def test_who_reaches_whom(door) -> None:
    groups = door.of("AWS::EC2::SecurityGroup")
    (tasks,) = [i for i in groups if i.startswith("ToolTasksSecurityGroup")]
    (proxy,) = [i for i in groups if i.startswith("WorkspaceProxySecurityGroup")]
    (front,) = [i for i in groups if i.startswith("FrontDoorSecurityGroup")]
    # Tool tasks: in from the front door only; out HTTPS and PostgreSQL within the VPC.
    inbound = [r for r in _rules(door.nested, "AWS::EC2::SecurityGroupIngress", tasks)]
    assert {r["SourceSecurityGroupId"] for r in inbound} == {f"<{front}.GroupId>"}
    egress = groups[tasks]["Properties"]["SecurityGroupEgress"]
    assert sorted((e["CidrIp"], e["FromPort"]) for e in egress) == [("0.0.0.0/0", 443), ("10.0.0.0/16", 5432)]
    assert {r["SourceSecurityGroupId"] for r in _rules(door.nested, "AWS::EC2::SecurityGroupIngress", proxy)} == {
        f"<{front}.GroupId>"
    }
    # The workspaces admit code-server's port from the proxy, and from nothing else.
    (to_workspaces,) = [
        r for r in resources(door.nested, "AWS::EC2::SecurityGroupIngress") if r.startswith("WorkspacesFromFrontDoor")
    ]
    rule = door.nested.to_json()["Resources"][to_workspaces]["Properties"]
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [proxy, "GroupId"]} and rule["FromPort"] == 8080
    workspace_ingress = [
        r
        for i, r in resources(door.main, "AWS::EC2::SecurityGroupIngress").items()
        if i.startswith("WorkspacesTaskSecurityGroup")
    ]
    assert workspace_ingress == []
    # Tools reach the students' database (a rule on its group from the tasks' group).
    assert any(
        i.startswith("StudentsDatabaseFromTools") for i in resources(door.nested, "AWS::EC2::SecurityGroupIngress")
    )


def test_the_user_pool_domain_moves_cognito_calls_to_the_nat(door) -> None:
    endpoints = json.dumps(resources(door.main, "AWS::EC2::VPCEndpoint"))
    assert "cognito-idp" not in endpoints
    for name in ("auth", "admin", "payments-webhook", "compliance"):
        assert any(a.startswith("cognito-idp:") for a in inventory.get(name).actions), name
        subnets = json.dumps(function_props(door.main, name)["VpcConfig"]["SubnetIds"])
        assert "functions" in subnets.lower(), name


def test_the_migration_makes_the_tools_databases_and_hands_on_their_credentials(door) -> None:
    env = function_props(door.main, "migrate")["Environment"]["Variables"]
    for key in ("TOOL_DATABASES", "TOOL_ADMIN_SECRETS"):
        # A JSON object tool → secret ARN (the ARNs are the nested stack's outputs).
        text = json.dumps(flatten(env[key]))
        for tool in TOOL_DATABASE_NAMES:
            assert f'\\"{tool}\\":' in text, (key, tool)
    assert env["SSM_PREFIX"].startswith("/apranova/")


def test_every_template_stays_under_the_resource_budget(door) -> None:
    assert len(door.main.to_json()["Resources"]) < 450
    assert len(door.nested.to_json()["Resources"]) < 450


def test_without_a_tools_domain_dev_builds_no_front_door(stack) -> None:
    assert stack.shared_tools is None


def test_a_tool_the_operator_brings_is_not_built(tmp_path_factory) -> None:
    context = {k: v for k, v in EXAMPLE.items() if k != "toolImageDigests"}
    context["toolImageDigests"] = {k: v for k, v in EXAMPLE["toolImageDigests"].items() if k != "superset"}
    from cdk.app import build

    _app, stack = build(
        {"aws:cdk:bundling-stacks": [], "stage": "prod", **context, "supersetUrl": "https://bi.example.org"}
    )
    nested = Template.from_stack(stack.shared_tools)
    families = {t["Properties"]["Family"] for t in resources(nested, "AWS::ECS::TaskDefinition").values()}
    assert "apranova-prod-superset" not in families and "apranova-prod-prefect" in families
    main = Template.from_stack(stack)
    main.has_resource_properties(
        "AWS::SSM::Parameter", {"Name": "/apranova/prod/tools/superset/url", "Value": "https://bi.example.org"}
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"toolImageDigests": {}}, "toolImageDigests must pin jupyterhub, superset, prefect"),
        ({"toolsHostedZoneId": ""}, "toolsDomain needs toolsCertificateArn or toolsHostedZoneId"),
        ({"toolImageDigests": {"superset": "latest"}}, "toolImageDigests.superset must be sha256"),
    ],
)
def test_prod_refuses_an_unpinned_or_unreachable_front_door(change, message) -> None:
    from cdk.app import ContextError, build

    with pytest.raises(ContextError, match=message):
        build({"aws:cdk:bundling-stacks": [], "stage": "prod", **EXAMPLE, **change})


def test_the_tools_start_after_the_migration_made_their_databases(door) -> None:
    stacks = resources(door.main, "AWS::CloudFormation::Stack")
    (shared,) = [r for i, r in stacks.items() if i.startswith("SharedTools")]
    (trigger,) = [i for i in resources(door.main, "Custom::Trigger") if i.startswith("RunMigrations")]
    assert trigger in shared["DependsOn"]
    # The migration reads the credentials from their own nested stack, made before it runs.
    assert any(i.startswith("ToolSecrets") for i in stacks)


# --- the hub's one-time sign-in page; TLS to the application's database -----------------------------


def _containers(door: Door) -> dict[str, dict[str, Any]]:
    return {
        c["Name"]: c
        for t in door.of("AWS::ECS::TaskDefinition").values()
        for c in t["Properties"]["ContainerDefinitions"]
    }


def _parameter(door: Door, suffix: str) -> str:
    (value,) = [
        p["Properties"]["Value"]
        for p in door.of("AWS::SSM::Parameter").values()
        if p["Properties"]["Name"].endswith(suffix)
    ]
    return value


def _environment(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def test_the_deployed_hub_serves_the_tools_apis_one_time_sign_in_page(door) -> None:
    # The module the local hub runs (/hub/apranova-login), shipped as it is, within SSM's 4 KB.
    login = _parameter(door, "/tools/jupyterhub/login-module")
    assert login == (ROOT / "local/tools/jupyterhub_login.py").read_text() and len(login) <= 4096
    assert '("/apranova-login", TicketLoginHandler)' in login
    config = _parameter(door, "/tools/jupyterhub/config")
    assert len(config) <= 4096
    compile(config, "jupyterhub_config.py", "exec")  # valid Python as written to the hub's disk
    assert "sys.path.insert(0, '/srv/jupyterhub')" in config
    assert "class ApraNovaAuthenticator(TicketLoginMixin, Authenticator):" in config
    assert "c.JupyterHub.authenticator_class = ApraNovaAuthenticator" in config
    assert "c.Authenticator.allow_all = False" in config and "c.Authenticator.allow_existing_users = True" in config
    assert "Dummy" not in config  # no shared password in AWS: students arrive by their one-time link
    hub = _containers(door)["jupyterhub"]
    assert {s["Name"] for s in hub["Secrets"]} >= {"HUB_CONFIG", "HUB_LOGIN"}
    (command,) = hub["Command"]
    written = command.index('printf "%s" "$HUB_LOGIN" > /srv/jupyterhub/jupyterhub_login.py')
    assert written < command.index("exec jupyterhub -f /srv/jupyterhub/jupyterhub_config.py")


def test_prod_tools_verify_the_application_databases_certificate_and_name(prod) -> None:
    from apranova import tls

    pem = tls.ca_bundle_pem("eu-west-1")  # the stack's region: its RDS root CAs
    assert pem.count("BEGIN CERTIFICATE") == 3
    containers = _containers(prod)
    for tool in ("superset", "prefect", "jupyterhub"):
        container = containers[tool]
        env = _environment(container)
        assert env["DB_CA_BUNDLE_PEM"] == pem and env["PGSSLROOTCERT"] == DB_CA_FILE, tool
        (command,) = container["Command"]
        assert command.startswith(f'printf "%s" "$DB_CA_BUNDLE_PEM" > {DB_CA_FILE} && '), tool
    assert "?sslmode=verify-full" in _parameter(prod, "/tools/superset/config")
    assert "?sslmode=verify-full" in _parameter(prod, "/tools/jupyterhub/config")
    (prefect_command,) = containers["prefect"]["Command"]
    assert "@$DB_HOST:5432/$DB_NAME?ssl=verify-full" in prefect_command  # asyncpg's spelling
    assert "sslmode=require" not in prod.raw_nested and "ssl=require" not in prod.raw_nested


def test_an_environment_agnostic_stack_still_encrypts_to_the_database(dev) -> None:
    # No region at synth: its CAs cannot be picked, so the tools require TLS without naming them.
    containers = _containers(dev)
    assert "?sslmode=require" in _parameter(dev, "/tools/superset/config")
    assert "?sslmode=require" in _parameter(dev, "/tools/jupyterhub/config")
    (prefect_command,) = containers["prefect"]["Command"]
    assert "?ssl=require" in prefect_command
    assert all("DB_CA_BUNDLE_PEM" not in _environment(containers[t]) for t in ("superset", "prefect", "jupyterhub"))
