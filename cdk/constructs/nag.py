"""Acknowledging a cdk-nag (AwsSolutions) finding on one construct, always with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import IConstruct

# The validation report names AwsSolutions findings "AwsSolutions::<rule>[<finding>]"; without the
# prefix CDK files the id under "Annotation::".
PREFIX = "AwsSolutions::"


def rendered(scope: IConstruct, finding: str) -> str:
    """``finding`` as cdk-nag writes it for ``scope``'s stack: an environment-agnostic stack's ARNs
    hold ``<AWS::Partition>``, ``<AWS::Region>`` and ``<AWS::AccountId>``; a stack pinned to an
    account and region (production) has their literal values there instead."""
    stack = Stack.of(scope)
    for pseudo, value in (
        ("<AWS::Partition>", stack.partition),
        ("<AWS::Region>", stack.region),
        ("<AWS::AccountId>", stack.account),
    ):
        if not Token.is_unresolved(value):
            finding = finding.replace(pseudo, value)
    return finding


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """``finding`` is the rule id with its finding, e.g. ``AwsSolutions-IAM5[Resource::*]``, written
    with the pseudo parameters of an environment-agnostic stack (see ``rendered``)."""
    if len(reason) < 40:
        raise ValueError(f"acknowledging {finding} needs a real reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=PREFIX + rendered(scope, finding), reason=reason))
