"""The instance students sign in to refuses what a student must not do (issue 15 item 3), wherever
the stage puts it: the students' own instance (dedicated) or the application's (shared)."""

from __future__ import annotations

from tests.infra.stack_support import resources


def test_only_the_master_user_may_set_passwords_and_only_over_tls(students_server):
    groups = resources(students_server.template, "AWS::RDS::DBParameterGroup")
    parameters = groups[students_server.instance["Properties"]["DBParameterGroupName"]["Ref"]]["Properties"][
        "Parameters"
    ]
    # Without it any role may ALTER ROLE CURRENT_USER PASSWORD (PostgreSQL's default).
    assert parameters["rds.restrict_password_commands"] == "1"
    assert parameters["rds.force_ssl"] == "1"


def test_the_application_instance_keeps_both_settings_too(template):
    # Dedicated or not, nobody but the master user sets a password on the application's instance.
    for instance in resources(template, "AWS::RDS::DBInstance").values():
        group = resources(template, "AWS::RDS::DBParameterGroup")[instance["Properties"]["DBParameterGroupName"]["Ref"]]
        assert group["Properties"]["Parameters"]["rds.restrict_password_commands"] == "1"
