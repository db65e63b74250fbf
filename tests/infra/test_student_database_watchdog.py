"""The student-database watchdog is deployed and scheduled every minute (issue 15 item 3)."""

from __future__ import annotations

from tests.infra.stack_support import env, function_ids, resources, role_statements, statements_with


def test_the_watchdog_runs_every_minute_with_the_admin_connection_of_the_student_database_step(template):
    function = function_ids(template)["student-database-watchdog"]
    props = resources(template, "AWS::Lambda::Function")[function]["Properties"]
    assert props["Handler"] == "functions.provision.student_database_watchdog.lambda_handler"
    assert "VpcConfig" in props  # it reaches the students' instance
    (schedule,) = [
        r["Properties"]
        for i, r in resources(template, "AWS::Scheduler::Schedule").items()
        if i.startswith("SchedulesStudentDatabaseWatchdog")
    ]
    assert schedule["ScheduleExpression"] == "rate(1 minute)" and schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert schedule["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == 60  # never overlaps the next run

    watchdog, step = env(template, "student-database-watchdog"), env(template, "provision-student-database")
    for key in ("STUDENTS_DB_ADMIN_SECRET_ARN", "STUDENTS_DB_ADMIN_HOST", "STUDENTS_DB_NAME", "STUDENTS_DB_HOST"):
        assert watchdog[key] == step[key]
    secrets = statements_with(role_statements(template, "student-database-watchdog"), "secretsmanager:")
    assert secrets and all(s["Action"] == ["secretsmanager:GetSecretValue"] for s in secrets)
    # It reads no student's password: it needs none.
    assert statements_with(role_statements(template, "student-database-watchdog"), "ssm:") == []
