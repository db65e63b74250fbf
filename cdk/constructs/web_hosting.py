"""The web app in AWS (issue 17 item 6, docs/principles.md §12), a nested stack: the build of ``web/`` in a
private bucket behind CloudFront, which also routes ``/api/*`` to the HTTP API, so the SPA and the
API share one origin as they do locally (``make dev``).

- **The build.** CDK builds the app itself with local bundling (``WebBundler``: the repository's
  pinned Node runs Vite into the asset; no Docker). The asset's hash is taken over the build's
  inputs, and a build is kept under ``.build/web/<hash>/``: the same inputs never build twice.
  A build whose ``index.html`` holds an inline script is refused (the CSP below would block it).
- **The bucket.** Private (public access blocked, no ACLs), SSE-S3, TLS only, access-logged into
  the stack's access-log bucket; read only by this distribution through origin access control
  (the bucket policy names the distribution). Not versioned: its content is a reproducible build
  of a commit (a rollback is a deploy of the older commit), and the deployment never prunes, so
  the hashed files an open tab still asks for stay, with no old versions to keep and expire.
  ``index.html`` is sent ``no-cache``; ``assets/*`` (content-hashed names) are immutable.
- **SPA routing.** A CloudFront Function on the default behavior rewrites a path whose last
  segment has no dot (``/dashboard``, ``/projects/3``) to ``/index.html``; files keep their path.
  Not the distribution's 403/404 error responses: those apply to every behavior, so the API's own
  403 and 404 JSON answers would come back as ``index.html`` with status 200.
- **The API.** ``/api/*`` goes to the HTTP API's ``execute-api`` host over TLS 1.2, never cached
  (CachingDisabled), every method, with every viewer header but Host (AllViewerExceptHostHeader:
  API Gateway routes by its own host name; with caching disabled the Authorization header and the
  refresh cookie are forwarded).
- **Response headers** on every answer, the API's included: the CSP (``csp``), HSTS for two years
  with subdomains and preload, ``nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``.
- **The web origin** (``origin``): ``https://<webDomain>`` with a custom domain (an ACM certificate
  in us-east-1, CloudFront's region for certificates), else ``https://<the distribution's domain>``.
  The API's CORS and the uploads bucket's CORS are properties of resources the distribution itself
  needs (the API's id for its origin, the bucket's name for the CSP): with a custom domain they name
  the static origin in their own templates; with the generated domain this stack sets them once the
  distribution exists (``apply_cors``: the same configuration, by ``UpdateApi`` and ``PutBucketCors``).
  docs/decisions.md explains why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import jsii
from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    Aws,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    NestedStack,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from apranova import cors
from cdk.constructs.bundling import ROOT, UNUSED_IMAGE, tree_hash
from cdk.constructs.nag import PREFIX, acknowledge, rendered

WEB = ROOT / "web"
# What the build reads: a change to any of these is a new asset (and a new build).
WEB_INPUTS = (
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "postcss.config.cjs",
)
# Finished builds by input hash (a git-ignored folder of the repository).
BUILD_CACHE = ROOT / ".build" / "web"
BUILD_TIMEOUT_SECONDS = 300
# CloudFront takes a viewer certificate only from us-east-1.
CERTIFICATE_REGION = "us-east-1"
# Two years, with subdomains and preload: what the HSTS preload list asks for.
HSTS_MAX_AGE = Duration.days(730)
ASSETS_CACHE_CONTROL = "public, max-age=31536000, immutable"
# The SPA's routes are paths without a file extension: they are all index.html.
SPA_ROUTING_CODE = """function handler(event) {
  var request = event.request;
  var last = request.uri.substring(request.uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
"""
_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def web_inputs() -> list[Path]:
    return [WEB / name for name in WEB_INPUTS if (WEB / name).exists()]


def web_asset_hash() -> str:
    return tree_hash(web_inputs(), "web")


def inline_scripts(html: str) -> list[str]:
    """The inline scripts (a ``<script>`` without ``src``, or with a body) and inline event handlers
    of ``html``: what ``script-src 'self'`` blocks."""
    found = [
        match.group(0)[:80]
        for match in _SCRIPT_TAG.finditer(html)
        if "src=" not in match.group(1) or match.group(2).strip()
    ]
    found += [match.group(0)[:80] for match in _INLINE_HANDLER.finditer(html)]
    return found


def _node() -> str:
    pinned = ROOT / "node_modules" / ".bin" / "node"
    return str(pinned) if pinned.exists() else "node"


def build_web(output_dir: Path) -> Path:
    """Builds ``web/`` into ``output_dir`` (through the cache): ``index.html`` and ``assets/``."""
    cached = BUILD_CACHE / web_asset_hash()
    if not (cached / "index.html").exists():
        vite = WEB / "node_modules" / "vite" / "bin" / "vite.js"
        if not vite.exists():
            raise RuntimeError("web/node_modules is missing: run `make web-setup` before synthesizing")
        BUILD_CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="build-", dir=BUILD_CACHE))
        try:
            subprocess.run(  # noqa: S603 - the pinned node and the repository's own vite
                [_node(), str(vite), "build", "--outDir", str(staging), "--emptyOutDir", "--logLevel", "warn"],
                cwd=WEB,
                check=True,
                timeout=BUILD_TIMEOUT_SECONDS,
                env={**os.environ, "NODE_ENV": "production"},
            )
            # Vite's manifest is for tools (the budget test), not for browsers.
            shutil.rmtree(staging / ".vite", ignore_errors=True)
            found = inline_scripts((staging / "index.html").read_text())
            if found:
                raise RuntimeError(f"web/ built an index.html with inline script, which the CSP blocks: {found}")
            try:
                staging.rename(cached)
            except OSError:  # another synth finished the same build first
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(cached, output_dir, dirs_exist_ok=True)
    return output_dir


@jsii.implements(ILocalBundling)
class WebBundler:
    """CDK's local bundling of the web app: the Vite build into the asset's output directory."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        build_web(Path(output_dir))
        return True


def web_source() -> s3deploy.ISource:
    return s3deploy.Source.asset(
        str(WEB),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=web_asset_hash(),
        # The image is required by the API and never used: local bundling always succeeds.
        bundling=BundlingOptions(image=UNUSED_IMAGE, local=WebBundler()),
    )


def content_security_policy(uploads: list[str]) -> str:
    """Scripts only from the app itself (no inline script, no eval); styles from the app and inline
    (Mantine sets ``style`` attributes and injects its CSS variables as a ``<style>`` element, and a
    static site has no per-response nonce to give them); the uploads bucket for the browser's
    presigned uploads (connect), and the trainer's inline view of an uploaded PDF or image (frame,
    img); nobody may frame the app."""
    sources = " ".join(uploads)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: {sources}",
            "font-src 'self'",
            f"connect-src 'self' {sources}",
            f"frame-src {sources}",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ]
    )


class WebHosting(NestedStack):
    """``bucket``, ``distribution``, ``origin`` (the web app's https origin) and ``url``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        api_id: str,
        uploads: s3.IBucket,
        access_logs: s3.IBucket,
        domain_name: str | None = None,
        certificate_arn: str | None = None,
        source: s3deploy.ISource | None = None,
    ) -> None:
        super().__init__(scope, id, description=f"ApraNova ({stage}): the web app behind CloudFront")
        if bool(domain_name) != bool(certificate_arn):
            raise ValueError("a custom web domain needs both its name and its us-east-1 certificate's ARN")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="web/",
            # Only a build of the repository: nothing to keep when the stage goes (the deployments
            # below empty it on delete).
            removal_policy=RemovalPolicy.DESTROY,
        )
        # The uploads bucket as browsers reach it: boto3 signs virtual-hosted URLs on the regional
        # endpoint (the global one in us-east-1).
        suffix = Aws.URL_SUFFIX
        self.uploads_sources = [
            f"https://{uploads.bucket_name}.s3.{Aws.REGION}.{suffix}",
            f"https://{uploads.bucket_name}.s3.{suffix}",
        ]
        self.csp = content_security_policy(self.uploads_sources)
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment=f"ApraNova {stage}: CSP, HSTS and the other security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self.csp, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, preload=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.SAME_ORIGIN, override=True
                ),
            ),
        )
        routing = cloudfront.Function(
            self,
            "SpaRouting",
            code=cloudfront.FunctionCode.from_inline(SPA_ROUTING_CODE),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="ApraNova: the SPA's routes (paths without an extension) are index.html",
        )
        self.api_host = f"{api_id}.execute-api.{Aws.REGION}.{suffix}"
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn) if certificate_arn else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"ApraNova {stage}: the web app and /api/*",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=routing, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
                compress=True,
            ),
            additional_behaviors={
                "/api/*": cloudfront.BehaviorOptions(
                    origin=origins.HttpOrigin(
                        self.api_host,
                        protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
                        origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
                    ),
                    # No redirect: a POST redirected to https would arrive as a GET.
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=headers,
                    compress=True,
                )
            },
            domain_names=[domain_name] if domain_name else None,
            certificate=certificate,
            # Only with a certificate of ours: the default one's policy is CloudFront's (TLSv1).
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.domain_name = domain_name
        self.origin = (
            f"https://{domain_name}" if domain_name else f"https://{self.distribution.distribution_domain_name}"
        )
        self.url = f"{self.origin}/"
        self._api_id = api_id
        self._uploads = uploads
        self._acknowledged: set[str] = set()
        self._deploy(source or web_source())
        self._acknowledge(custom_domain=bool(domain_name))

    def _deploy(self, source: s3deploy.ISource) -> None:
        """The hashed files first, then ``index.html`` (which names them). Never pruned: a tab opened
        before a deploy still finds the chunks its ``index.html`` named."""
        assets = s3deploy.BucketDeployment(
            self,
            "Assets",
            sources=[source],
            destination_bucket=self.bucket,
            exclude=["index.html"],
            prune=False,
            retain_on_delete=False,
            cache_control=[s3deploy.CacheControl.from_string(ASSETS_CACHE_CONTROL)],
        )
        page = s3deploy.BucketDeployment(
            self,
            "IndexPage",
            sources=[source],
            destination_bucket=self.bucket,
            exclude=["*"],
            include=["index.html"],
            prune=False,
            retain_on_delete=False,
            cache_control=[s3deploy.CacheControl.no_cache()],
        )
        page.node.add_dependency(assets)
        self.deployments = (assets, page)

    def apply_cors(self) -> None:
        """Sets the API's CORS and the uploads bucket's CORS rule to this distribution's origin, once
        it exists (the generated-domain case: their templates cannot name it without a cycle)."""
        policy = cors.policy(self.origin)
        api_arn = f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/apis/{self._api_id}"
        self.api_cors = cr.AwsCustomResource(
            self,
            "ApiCors",
            on_update=cr.AwsSdkCall(
                service="ApiGatewayV2",
                action="updateApi",
                parameters={
                    "ApiId": self._api_id,
                    "CorsConfiguration": {
                        "AllowOrigins": list(policy.allow_origins),
                        "AllowMethods": list(policy.allow_methods),
                        "AllowHeaders": list(policy.allow_headers),
                        "AllowCredentials": policy.allow_credentials,
                        "MaxAge": policy.max_age_seconds,
                    },
                },
                physical_resource_id=cr.PhysicalResourceId.of(f"{self._api_id}-cors"),
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["apigateway:PATCH"], resources=[api_arn])]
            ),
            install_latest_aws_sdk=False,
        )
        self.uploads_cors = cr.AwsCustomResource(
            self,
            "UploadsCors",
            on_update=cr.AwsSdkCall(
                service="S3",
                action="putBucketCors",
                parameters={
                    "Bucket": self._uploads.bucket_name,
                    "CORSConfiguration": {"CORSRules": [cors.uploads_bucket_rule(self.origin)]},
                },
                physical_resource_id=cr.PhysicalResourceId.of(f"{self._uploads.bucket_name}-cors"),
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["s3:PutBucketCORS"], resources=[self._uploads.bucket_arn])]
            ),
            install_latest_aws_sdk=False,
        )
        self._acknowledge_handlers()

    def _acknowledge(self, *, custom_domain: bool) -> None:
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: students and trainers may be anywhere; access is decided by sign-in.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No WAF web ACL: the static app is read-only and /api/* is throttled per route by API Gateway "
            "(docs/operations.md, API throttling); a WAF is an operator's option, not a default cost.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "No CloudFront standard logs: they need an ACL-enabled bucket (every bucket here enforces "
            "ownership); the API's requests are logged by API Gateway's access log, the app's files are "
            "public build output, and the bucket's own access log records CloudFront's reads.",
        )
        if not custom_domain:
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR4",
                "Without webDomain the distribution serves CloudFront's default *.cloudfront.net certificate, "
                "whose minimum protocol CloudFront fixes at TLSv1; with webDomain the policy is TLSv1.2_2021.",
            )
        self._acknowledge_handlers()

    def _acknowledge_handlers(self) -> None:
        """The Lambda functions CDK itself provides for the custom resources (BucketDeployment's, and
        AwsCustomResource's singleton): their runtime, role and grants are CDK's, scoped by CDK."""
        for child in self.node.children:
            if child.node.id.startswith(HANDLER_IDS) and child.node.id not in self._acknowledged:
                self._acknowledged.add(child.node.id)
                for finding, reason in HANDLER_FINDINGS:
                    _acknowledge_either(child, finding, reason)


def _acknowledge_either(scope: IConstruct, finding: str, reason: str) -> None:
    """A nested stack's template keeps the pseudo parameters (``<AWS::Partition>``) where a pinned
    stage's parent has their values: the finding as written, and as ``acknowledge`` renders it."""
    acknowledge(scope, finding, reason)
    if rendered(scope, finding) != finding:
        Validations.of(scope).acknowledge(Acknowledgment(id=PREFIX + finding, reason=reason))


# BucketDeployment's and AwsCustomResource's singleton handlers, by the ids CDK gives them.
HANDLER_IDS = ("Custom::CDKBucketDeployment", "AWS679f53fac002430cb0da5b7982bd2287")
_HANDLER = "CDK's own custom-resource handler (BucketDeployment, AwsCustomResource)"
HANDLER_FINDINGS = (
    (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        f"{_HANDLER} has Lambda's basic execution policy: it writes only its own logs.",
    ),
    ("AwsSolutions-L1", f"{_HANDLER}: its runtime is chosen and bumped by the CDK release, not by this code."),
    *(
        (
            f"AwsSolutions-IAM5[{finding}]",
            f"{_HANDLER}: CDK grants the deployment read on the CDK assets bucket's objects (the build's zip) "
            "and read-write on this stack's web bucket only, with the object-level wildcards S3 needs.",
        )
        for finding in (
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Resource::<Bucket83908E77.Arn>/*",
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
        )
    ),
)
