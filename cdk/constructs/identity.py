"""The Cognito user pool (email is the username), its SPA app client and its role groups.

The settings the local stack mirrors (password policy, flows, token lifetimes, groups) come from
``apranova.user_pool_settings``; what only AWS has (deletion protection, email sending, the
feature plan) is decided here.
"""

from __future__ import annotations

from aws_cdk import Arn, ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from apranova import user_pool_settings as settings
from cdk.constructs.cfn import resource_of
from cdk.constructs.nag import acknowledge


def _ses_identity(ses_sender_arn: str) -> tuple[str, str | None]:
    """The identity's name (an address or a domain) and its region."""
    parts = Arn.split(ses_sender_arn, ArnFormat.SLASH_RESOURCE_NAME)
    identity = parts.resource_name or ""
    if parts.service != "ses" or parts.resource != "identity" or not identity:
        raise ValueError(f"sesSenderArn must be an SES identity ARN, not {ses_sender_arn!r}")
    return identity, parts.region


def sender_address(ses_sender_arn: str) -> str:
    """The From address of an SES identity: an email identity is the sender itself; a domain
    identity sends as no-reply@ that domain."""
    identity, _region = _ses_identity(ses_sender_arn)
    return identity if "@" in identity else f"no-reply@{identity}"


def _email(ses_sender_arn: str | None) -> cognito.UserPoolEmail:
    """Cognito's own sender by default; an SES identity (its ARN) when the operator gives one."""
    if not ses_sender_arn:
        return cognito.UserPoolEmail.with_cognito()
    identity, region = _ses_identity(ses_sender_arn)
    return cognito.UserPoolEmail.with_ses(
        from_email=sender_address(ses_sender_arn),
        from_name="ApraNova",
        ses_region=region,
        ses_verified_domain=None if "@" in identity else identity,
    )


class Identity(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        production: bool,
        ses_sender_arn: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        policy = settings.PASSWORD_POLICY
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"apranova-{stage}",
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            sign_in_case_sensitive=False,
            self_sign_up_enabled=True,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            # A changed email only replaces the old one once its code is confirmed.
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True),
                fullname=cognito.StandardAttribute(required=False, mutable=True),
            ),
            user_verification=cognito.UserVerificationConfig(
                email_style=cognito.VerificationEmailStyle.CODE,
                email_subject=settings.VERIFICATION_EMAIL_SUBJECT,
                email_body=settings.VERIFICATION_EMAIL_MESSAGE,
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=policy.min_length,
                require_uppercase=policy.require_uppercase,
                require_lowercase=policy.require_lowercase,
                require_digits=policy.require_digits,
                require_symbols=policy.require_symbols,
                temp_password_validity=Duration.days(policy.temporary_password_validity_days),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # The API's login answers tokens straight from USER_PASSWORD_AUTH: it has no MFA
            # challenge or enrolment step yet (see the nag acknowledgment below).
            mfa=cognito.Mfa.OFF,
            # AWS's default plan for new pools, pinned so a CDK default cannot change the bill.
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            email=_email(ses_sender_arn),
            deletion_protection=production,
            removal_policy=RemovalPolicy.RETAIN if production else RemovalPolicy.DESTROY,
        )
        if ses_sender_arn:
            # The L2 builds the identity ARN from this stack's account: use the operator's exactly.
            pool = resource_of(self.user_pool)
            pool.add_property_override("EmailConfiguration.SourceArn", ses_sender_arn)
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is off until the API has an MFA enrolment and challenge step: login returns tokens "
            "straight from USER_PASSWORD_AUTH, so a user who enrolled a factor could not sign in. "
            "Meanwhile: 12-character passwords with all classes, 15-minute access tokens, revocation.",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "Threat protection needs the Plus feature plan, billed per monthly active user at several "
            "times Essentials: that is the owner's cost decision (docs/operations.md). Switching is "
            "feature_plan=PLUS plus standard_threat_protection_mode=FULL_FUNCTION here.",
        )

        self.client = self.user_pool.add_client(
            "SpaClient",
            user_pool_client_name=f"apranova-{stage}-spa",
            generate_secret=False,  # a browser app cannot keep a secret
            # USER_PASSWORD_AUTH; CDK always adds ALLOW_REFRESH_TOKEN_AUTH.
            auth_flows=cognito.AuthFlow(user_password=True),
            disable_o_auth=True,  # no hosted UI, no authorization-code or implicit grant
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.minutes(settings.ACCESS_TOKEN_MINUTES),
            id_token_validity=Duration.minutes(settings.ID_TOKEN_MINUTES),
            refresh_token_validity=Duration.days(settings.REFRESH_TOKEN_DAYS),
            # Sign-up writes email and name; a user's own token may change nothing else.
            read_attributes=cognito.ClientAttributes().with_standard_attributes(
                email=True, email_verified=True, fullname=True
            ),
            write_attributes=cognito.ClientAttributes().with_standard_attributes(email=True, fullname=True),
        )

        self.groups = {
            name: cognito.CfnUserPoolGroup(
                self,
                f"Group-{name}",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=name,
                precedence=precedence,
                description=f"ApraNova {name} (the role in the token's cognito:groups)",
            )
            for name, precedence in settings.GROUP_PRECEDENCE.items()
        }

    @property
    def issuer(self) -> str:
        """The ``iss`` of the pool's tokens, built as the authorizer builds the one it checks."""
        region = Stack.of(self).region
        return f"https://cognito-idp.{region}.amazonaws.com/{self.user_pool.user_pool_id}"
