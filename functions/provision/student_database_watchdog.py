"""The student-database watchdog, run every minute by a schedule (EventBridge Scheduler).

A student's ``statement_timeout`` is a default the student can lift (``SET``, ``ALTER ROLE
CURRENT_USER SET``); this run is the limit they cannot: it terminates student sessions whose
statement has run past the limit and puts back any role setting a student changed
(``StudentDatabaseProvisioner.enforce_limits``). Then it makes the spare databases DP enrollments
take instead of creating their own (``refill_spares``: ``STUDENTS_DB_SPARE_DATABASES`` of them). It
reaches the students' server as the student-database step does (same settings, same admin secret,
read at use).
"""

from __future__ import annotations

from typing import Any

from apranova.observability import entry
from functions.provision.tools.registry import provisioner
from functions.provision.tools.student_database import StudentDatabaseProvisioner


@entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    student_databases = provisioner("STUDENT_DATABASE")
    assert isinstance(student_databases, StudentDatabaseProvisioner)
    summary = student_databases.enforce_limits()
    return {**summary, **student_databases.refill_spares()}
