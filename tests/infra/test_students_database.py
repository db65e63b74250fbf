"""Where the students' databases live in AWS (issue 15 item 3): the ``studentsDatabase`` context.

``dedicated`` (the default, and the only choice in prod): an instance of their own, in a nested
stack (tests/infra/test_production.py checks it in both stages). ``shared``: the application's
instance, for a cheap dev stage (the lean profile's default). test_tools.py checks, in both modes,
that every function reaching the students' databases names the same instance and secret.
"""

from __future__ import annotations

import pytest
from aws_cdk import App

from cdk.app import ContextError, check_context, students_database_mode
from tests.infra.stack_support import resources

RESOURCE_BUDGET = 450


def test_a_shared_stage_has_no_students_instance_and_stays_clean(shared):
    stack, template, report = shared
    assert stack.students_database is None
    assert not [i for i in resources(template, "AWS::CloudFormation::Stack") if i.startswith("StudentsDatabase")]
    (instance,) = resources(template, "AWS::RDS::DBInstance").values()
    assert instance["Properties"]["DBInstanceIdentifier"] == "apranova-dev"
    # cdk-nag: nothing unacknowledged.
    assert all(plugin["conclusion"] == "success" and not plugin["violations"] for plugin in report["pluginReports"])
    assert len(template.to_json()["Resources"]) < RESOURCE_BUDGET


@pytest.mark.parametrize(
    ("context", "mode"),
    [
        ({}, "dedicated"),
        ({"costProfile": "lean"}, "shared"),  # the cheap profile's default
        ({"costProfile": "lean", "studentsDatabase": "dedicated"}, "dedicated"),  # said outright, it wins
        ({"studentsDatabase": "shared"}, "shared"),
        ({"stage": "prod"}, "dedicated"),
    ],
)
def test_the_default_is_dedicated_except_for_the_lean_profile(context, mode):
    assert students_database_mode(App(context=context)) == mode


@pytest.mark.parametrize(
    ("stage", "value", "message"),
    [
        ("prod", "shared", "studentsDatabase shared is for non-production stages"),
        ("dev", "pooled", "studentsDatabase must be one of dedicated, shared, not 'pooled'"),
    ],
)
def test_a_bad_students_database_is_refused_by_name(stage, value, message):
    with pytest.raises(ContextError, match=message):
        check_context(App(context={"studentsDatabase": value}), stage)


def test_the_stack_itself_refuses_sharing_in_production():
    from cdk.stacks.apranova_stack import ApraNovaStack

    with pytest.raises(ValueError, match="studentsDatabase must be dedicated in production"):
        ApraNovaStack(App(), "ApraNova-prod", stage="prod", web_domain="app.example", students_database="shared")
