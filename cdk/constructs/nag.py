"""Acknowledging a cdk-nag (AwsSolutions) finding on one construct, always with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

# The validation report names AwsSolutions findings "AwsSolutions::<rule>[<finding>]"; without the
# prefix CDK files the id under "Annotation::".
PREFIX = "AwsSolutions::"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """``finding`` is the rule id with its finding, e.g. ``AwsSolutions-IAM5[Resource::*]``."""
    if len(reason) < 40:
        raise ValueError(f"acknowledging {finding} needs a real reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=PREFIX + finding, reason=reason))
