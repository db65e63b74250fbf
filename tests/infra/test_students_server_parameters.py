"""The instance students sign in to refuses what a student must not do (issue 15 item 3)."""

from __future__ import annotations

from tests.infra.stack_support import resources


def test_only_the_master_user_may_set_passwords_and_only_over_tls(template):
    groups = resources(template, "AWS::RDS::DBParameterGroup")
    for instance in resources(template, "AWS::RDS::DBInstance").values():
        parameters = groups[instance["Properties"]["DBParameterGroupName"]["Ref"]]["Properties"]["Parameters"]
        # Without it any role may ALTER ROLE CURRENT_USER PASSWORD (PostgreSQL's default).
        assert parameters["rds.restrict_password_commands"] == "1"
        assert parameters["rds.force_ssl"] == "1"
