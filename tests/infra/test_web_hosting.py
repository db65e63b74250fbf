"""The web app in AWS (issue 17 item 6): the bucket, the distribution, the headers, the one origin the
API, the uploads bucket and the emails name, and the build CDK bundles (cdk/constructs/web_hosting.py).

The dev stack's assertions read the session's one synthesis; the custom-domain distribution and the
bundled asset come from a small stack of its own (the build is cached by its inputs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from apranova import cors
from cdk.constructs.web_hosting import CERTIFICATE_REGION, WEB, WebHosting, build_web, inline_scripts

# CloudFront's managed policies, by their documented ids.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
CERTIFICATE = f"arn:aws:acm:{CERTIFICATE_REGION}:111122223333:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
MAX_RESOURCES = 450


@pytest.fixture(scope="session")
def web(stack):
    return Template.from_stack(stack.web).to_json()


def _one(template: dict, kind: str) -> tuple[str, dict]:
    (found,) = [(lid, r) for lid, r in template["Resources"].items() if r["Type"] == kind]
    return found


def _distribution(web: dict) -> dict:
    return _one(web, "AWS::CloudFront::Distribution")[1]["Properties"]["DistributionConfig"]


def _web_origin_reference(template: dict) -> dict:
    """The parent's reference to the distribution's domain (the nested stack's output)."""
    (nested,) = [
        lid
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudFormation::Stack" and lid.startswith("WebNestedStack")
    ]
    outputs = [
        value["Fn::GetAtt"][1]
        for value in _walk(template["Outputs"]["WebUrl"]["Value"])
        if isinstance(value, dict) and "Fn::GetAtt" in value
    ]
    (output,) = outputs
    assert output.endswith("DomainName")
    return {"Fn::GetAtt": [nested, output]}


def _walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _csp(web: dict) -> str:
    """The CSP with the uploads bucket's references written as ``<uploads>``/``<region>``/``<suffix>``."""
    value = _one(web, "AWS::CloudFront::ResponseHeadersPolicy")[1]["Properties"]["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    parts = []
    for part in value["Fn::Join"][1]:
        if isinstance(part, str):
            parts.append(part)
        elif part.get("Ref") == "AWS::Region":
            parts.append("<region>")
        elif part.get("Ref") == "AWS::URLSuffix":
            parts.append("<suffix>")
        else:
            assert "Uploads" in part["Ref"], part
            parts.append("<uploads>")
    return "".join(parts)


def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (item.strip() for item in csp.split(";")) if d}


def test_the_bucket_is_private_encrypted_tls_only_and_read_only_by_this_distribution(web):
    bucket_id, bucket = _one(web, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "web/"
    assert "WebsiteConfiguration" not in props and "VersioningConfiguration" not in props
    statements = _one(web, "AWS::S3::BucketPolicy")[1]["Properties"]["PolicyDocument"]["Statement"]
    deny, *allows = statements
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # One reader: CloudFront, for this distribution only, objects only. No public or OAI principal.
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    (distribution_id,) = [lid for lid, r in web["Resources"].items() if r["Type"] == "AWS::CloudFront::Distribution"]
    assert {"Ref": distribution_id} in allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Join"][1]
    assert not [r for r in web["Resources"].values() if r["Type"] == "AWS::CloudFront::CloudFrontOriginAccessIdentity"]
    # The bucket is the origin, through origin access control.
    (s3_origin,) = [o for o in _distribution(web)["Origins"] if "S3OriginConfig" in o]
    assert s3_origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    assert s3_origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac_id, oac = _one(web, "AWS::CloudFront::OriginAccessControl")
    assert s3_origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"


def test_the_app_is_cached_and_its_routes_are_index_html_without_touching_the_api_s_errors(web):
    config = _distribution(web)
    assert config["DefaultRootObject"] == "index.html"
    default = config["DefaultCacheBehavior"]
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["AllowedMethods"] == ["GET", "HEAD"]
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    # SPA routing by a viewer-request function on the app's behavior only: no error-response
    # rewriting, which would turn the API's own 403/404 answers into index.html.
    assert "CustomErrorResponses" not in config
    (association,) = default["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    function_id, function = _one(web, "AWS::CloudFront::Function")
    assert association["FunctionARN"] == {"Fn::GetAtt": [function_id, "FunctionARN"]}
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"


@pytest.mark.parametrize(
    ("uri", "served"),
    [
        ("/", "/index.html"),
        ("/dashboard", "/index.html"),
        ("/projects/3/deliverables", "/index.html"),
        ("/payment/success", "/index.html"),
        ("/assets/index-DxNQENnx.js", "/assets/index-DxNQENnx.js"),
        ("/assets/index-BUn5Ztbq.css", "/assets/index-BUn5Ztbq.css"),
        ("/index.html", "/index.html"),
    ],
)
def test_the_routing_function_rewrites_pages_and_leaves_files(web, uri, served, tmp_path):
    """The function's own code, run by Node (the pinned one) on CloudFront's event shape."""
    import subprocess

    from cdk.constructs.web_hosting import _node

    code = _one(web, "AWS::CloudFront::Function")[1]["Properties"]["FunctionCode"]
    script = tmp_path / "run.js"
    script.write_text(code + f"\nprocess.stdout.write(handler({{request: {{uri: {json.dumps(uri)}}}}}).uri);\n")
    result = subprocess.run([_node(), str(script)], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout == served


def test_api_paths_go_uncached_with_every_method_to_the_http_api(web, stack):
    config = _distribution(web)
    (behavior,) = config["CacheBehaviors"]
    assert behavior["PathPattern"] == "/api/*"
    assert behavior["CachePolicyId"] == CACHING_DISABLED
    assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert behavior["ViewerProtocolPolicy"] == "https-only"  # a redirected POST would arrive as a GET
    (origin,) = [o for o in config["Origins"] if o["Id"] == behavior["TargetOriginId"]]
    assert origin["CustomOriginConfig"] == {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"]}
    host = origin["DomainName"]["Fn::Join"][1]
    assert host[1:] == [".execute-api.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]
    # The parameter the parent passes is the HTTP API's id.
    parameter = host[0]["Ref"]
    parent = Template.from_stack(stack).to_json()
    (nested,) = [
        r
        for lid, r in parent["Resources"].items()
        if lid.startswith("WebNestedStack") and r["Type"] == "AWS::CloudFormation::Stack"
    ]
    (api_id,) = [lid for lid, r in parent["Resources"].items() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert nested["Properties"]["Parameters"][parameter] == {"Ref": api_id}


def test_every_answer_carries_the_security_headers(web):
    policy_id, policy = _one(web, "AWS::CloudFront::ResponseHeadersPolicy")
    config = _distribution(web)
    for behavior in (config["DefaultCacheBehavior"], *config["CacheBehaviors"]):
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 63072000,
        "IncludeSubdomains": True,
        "Preload": True,
        "Override": True,
    }
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "same-origin", "Override": True}
    assert headers["ContentSecurityPolicy"]["Override"] is True


def test_the_csp_allows_no_inline_script_and_only_the_uploads_bucket_beyond_the_app(web):
    directives = _directives(_csp(web))
    uploads = ["https://<uploads>.s3.<region>.<suffix>", "https://<uploads>.s3.<suffix>"]
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no host
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]  # Mantine's style attributes
    assert directives["connect-src"] == ["'self'", *uploads]  # presigned uploads straight to S3
    assert directives["frame-src"] == uploads  # the trainer's inline view of a PDF
    assert directives["img-src"] == ["'self'", "data:", *uploads]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]


def test_the_api_the_uploads_bucket_and_every_link_name_the_distribution(template, web):
    """The generated-domain case (dev): one origin everywhere, set once the distribution exists."""
    reference = _web_origin_reference(template.to_json())
    origin = {"Fn::Join": ["", ["https://", reference]]}
    expected_policy = cors.policy("https://x")
    calls = {(call := _sdk_call(r))["service"]: call for r in web["Resources"].values() if r["Type"] == "Custom::AWS"}
    assert set(calls) == {"ApiGatewayV2", "S3"}
    api_call = calls["ApiGatewayV2"]
    assert (api_call["service"], api_call["action"]) == ("ApiGatewayV2", "updateApi")
    assert api_call["parameters"]["ApiId"] == "<api>"
    configuration = api_call["parameters"]["CorsConfiguration"]
    assert configuration["AllowOrigins"] == ["https://<distribution>"]
    assert configuration["AllowMethods"] == list(expected_policy.allow_methods)
    assert configuration["AllowHeaders"] == list(expected_policy.allow_headers)
    assert configuration["AllowCredentials"] is True and configuration["MaxAge"] == expected_policy.max_age_seconds
    uploads_call = calls["S3"]
    assert (uploads_call["service"], uploads_call["action"]) == ("S3", "putBucketCors")
    assert uploads_call["parameters"]["Bucket"] == "<uploads>"
    assert uploads_call["parameters"]["CORSConfiguration"] == {
        "CORSRules": [cors.uploads_bucket_rule("https://<distribution>")]
    }
    # Their templates then hold no origin of their own (it would be a dependency cycle).
    (api,) = [r for r in template.to_json()["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert "CorsConfiguration" not in api["Properties"]
    uploads = [
        r for lid, r in template.to_json()["Resources"].items() if r["Type"] == "AWS::S3::Bucket" and "Uploads" in lid
    ]
    assert len(uploads) == 1 and "CorsConfiguration" not in uploads[0]["Properties"]
    # Every function's link base and the checkout's return URLs are the same origin.
    functions = {
        lid: r["Properties"].get("Environment", {}).get("Variables", {})
        for lid, r in template.to_json()["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    linked = {lid: v["SPA_ORIGIN"] for lid, v in functions.items() if "SPA_ORIGIN" in v}
    assert len(linked) >= 8, sorted(linked)
    assert all(value == origin for value in linked.values()), linked
    checkout = [v["CHECKOUT_SUCCESS_URL"] for v in functions.values() if "CHECKOUT_SUCCESS_URL" in v]
    assert checkout and all(
        url == {"Fn::Join": ["", ["https://", reference, "/payment/success?session_id={CHECKOUT_SESSION_ID}"]]}
        for url in checkout
    )
    assert not [v for v in functions.values() for value in v.values() if "localhost" in json.dumps(value)]


def _sdk_call(resource: dict) -> dict:
    """The custom resource's SDK call, with the distribution's and the uploads bucket's references
    written as placeholders."""
    create = resource["Properties"]["Create"]
    parts = create["Fn::Join"][1] if isinstance(create, dict) else [create]
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        elif "Fn::GetAtt" in part and part["Fn::GetAtt"][1] == "DomainName":
            text += "<distribution>"
        elif "Ref" in part and "Uploads" in part["Ref"]:
            text += "<uploads>"
        elif "Ref" in part and "Api" in part["Ref"]:
            text += "<api>"
        else:
            text += json.dumps(part)
    return json.loads(text)


def test_a_custom_domain_stage_names_its_domain_in_the_templates(configured):
    _report, template = configured
    origin = "https://app.apranova.example"
    (api,) = template.find_resources("AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["CorsConfiguration"]["AllowOrigins"] == [origin]
    (uploads,) = [r for lid, r in template.find_resources("AWS::S3::Bucket").items() if "Uploads" in lid]
    assert uploads["Properties"]["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == [origin]
    outputs = template.to_json()["Outputs"]
    assert outputs["WebUrl"]["Value"] == f"{origin}/"
    assert "WebDomainTarget" in outputs


def test_every_template_stays_under_the_resource_budget(template, web):
    assert len(template.to_json()["Resources"]) < MAX_RESOURCES
    assert len(web["Resources"]) < MAX_RESOURCES


@pytest.fixture(scope="module")
def custom_domain(tmp_path_factory):
    """A stack of its own with the web hosting on a custom domain, bundled for real (no skipped
    bundling): (template, the asset directory CDK staged)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir))
    parent = Stack(app, "Parent")
    uploads = s3.Bucket(parent, "Uploads")
    logs = s3.Bucket(parent, "Logs")
    web = WebHosting(
        parent,
        "Web",
        stage="test",
        api_id="abc123",
        uploads=uploads,
        access_logs=logs,
        domain_name="app.example.com",
        certificate_arn=CERTIFICATE,
    )
    assembly = app.synth()
    template = Template.from_stack(web).to_json()
    (deployment, _page) = sorted(
        (r for r in template["Resources"].values() if r["Type"] == "Custom::CDKBucketDeployment"),
        key=lambda r: "Include" in r["Properties"],
    )
    (key,) = deployment["Properties"]["SourceObjectKeys"]
    staged = Path(assembly.directory) / f"asset.{key.removesuffix('.zip')}"
    return template, staged


def test_the_deployed_asset_is_the_vite_build_of_web(custom_domain):
    template, staged = custom_domain
    html = (staged / "index.html").read_text()
    # index.html names the build's hashed entry, which the asset holds; no source, no manifest.
    (entry,) = re.findall(r'<script type="module" crossorigin src="/(assets/index-[^"]+\.js)"></script>', html)
    assert (staged / entry).is_file()
    assert not (staged / "src").exists() and not (staged / ".vite").exists()
    assert not inline_scripts(html)
    assert (WEB / "index.html").read_text().count('id="root"') == html.count('id="root"') == 1
    # The hashed files first, immutable; then index.html, revalidated on every visit; never pruned.
    assets, page = sorted(
        (r for r in template["Resources"].values() if r["Type"] == "Custom::CDKBucketDeployment"),
        key=lambda r: "Include" in r["Properties"],
    )
    assert assets["Properties"]["Exclude"] == ["index.html"]
    assert assets["Properties"]["SystemMetadata"] == {"cache-control": "public, max-age=31536000, immutable"}
    assert page["Properties"]["Include"] == ["index.html"] and page["Properties"]["Exclude"] == ["*"]
    assert page["Properties"]["SystemMetadata"] == {"cache-control": "no-cache"}
    assert assets["Properties"]["Prune"] is False and page["Properties"]["Prune"] is False


def test_a_custom_domain_serves_tls_1_2_with_its_certificate_and_needs_no_late_cors(custom_domain):
    template, _staged = custom_domain
    config = _distribution(template)
    assert config["Aliases"] == ["app.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CERTIFICATE,
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    assert not [r for r in template["Resources"].values() if r["Type"] == "Custom::AWS"]


def test_the_build_refuses_an_inline_script():
    assert inline_scripts('<script type="module" crossorigin src="/assets/a.js"></script>') == []
    assert inline_scripts("<script>window.x = 1</script>")
    assert inline_scripts('<script type="module">import "/a.js"</script>')
    assert inline_scripts('<body onload="go()">')


def test_the_build_is_cached_by_its_inputs(tmp_path):
    import time

    build_web(tmp_path / "first")
    started = time.monotonic()
    build_web(tmp_path / "second")
    assert time.monotonic() - started < 2  # a copy of the cached build, no Vite run
    first = sorted(p.relative_to(tmp_path / "first") for p in (tmp_path / "first").rglob("*"))
    assert first == sorted(p.relative_to(tmp_path / "second") for p in (tmp_path / "second").rglob("*"))
