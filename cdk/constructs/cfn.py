"""Typed access to what CDK's L2 constructs leave loosely typed: the CloudFormation resource behind
a construct (``node.default_child``), and values an L2 may leave unset but ours always set."""

from __future__ import annotations

from typing import TypeVar, cast

from aws_cdk import CfnResource
from constructs import IConstruct

T = TypeVar("T")


def resource_of(construct: IConstruct) -> CfnResource:
    """The CloudFormation resource an L2 construct wraps (its default child)."""
    child = construct.node.default_child
    if child is None:
        raise ValueError(f"{construct.node.path} wraps no CloudFormation resource")
    return cast(CfnResource, child)


def required(value: T | None, what: str) -> T:
    """A value the L2 types as optional that our configuration always sets (e.g. a generated secret)."""
    if value is None:
        raise ValueError(f"{what} is not set")
    return value
