"""Admin use cases. The Cognito group (the role in the token) and ``users.role`` change together."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from apranova import audit, db
from apranova.errors import Conflict, NotFound
from apranova.identity import Caller
from functions.admin import repository
from functions.admin.models import RoleChange, RoleChanged


def change_role(
    actor: Caller,
    user_id: str,
    request: RoleChange,
    move_groups: Callable[[str, str], None],
    request_id: str | None = None,
) -> RoleChanged:
    """``move_groups(username, role)`` puts the Cognito user in the role's group only.

    The groups move last, inside the transaction: if Cognito refuses, the row is not changed.
    """
    try:
        UUID(user_id)
    except ValueError:
        raise NotFound("No such user.") from None
    with db.transaction() as cur:
        user = repository.lock_user(cur, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user["role"] == "admin" and request.role != "admin":
            admins = repository.lock_admins(cur)
            if admins == [user_id]:
                raise Conflict("The last admin cannot give up the admin role.", code="last_admin")
        repository.set_role(cur, user_id, request.role)
        audit.record(
            cur,
            "ROLE_CHANGE",
            actor=actor,
            subject_id=user_id,
            resource_type="user",
            resource_id=user_id,
            details={"from": user["role"], "to": request.role},
            request_id=request_id,
        )
        move_groups(user["email"], request.role)
    return RoleChanged(id=user_id, email=user["email"], role=request.role, previous_role=user["role"])
