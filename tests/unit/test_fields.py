"""The canonical uuid check every route that takes an id from a path, a query or a body uses."""

from __future__ import annotations

import uuid

import pytest

from apranova.fields import UUID_PATTERN, canonical_uuid, is_uuid

ID = uuid.UUID("8e986056-c119-4a2b-9c3d-0123456789ab")


def test_the_canonical_form_in_either_case_is_an_id_spelled_as_we_spell_ids():
    assert canonical_uuid(str(ID)) == str(ID)
    assert canonical_uuid(str(ID).upper()) == str(ID)
    assert is_uuid(str(ID))


@pytest.mark.parametrize(
    "value",
    [
        # uuid.UUID takes these four; PostgreSQL refuses the first and last, reads the others as the id
        f"urn:uuid:{ID}",
        f"{{{ID}}}",
        ID.hex,
        "8e98605-6c119-4a2b-9c3d-0123456789ab",
        f"{ID}\n",
        f" {ID}",
        f"{ID}\x00",
        str(ID).replace("8", "\uff18"),  # a full-width digit
        "",
        None,
        ID,
    ],
)
def test_every_other_spelling_is_not(value):
    assert canonical_uuid(value) is None and not is_uuid(value)


def test_the_pattern_is_the_same_rule_for_request_models():
    from pydantic import BaseModel, Field, ValidationError

    class Body(BaseModel):
        id: str = Field(pattern=UUID_PATTERN)

    assert Body(id=str(ID).upper()).id == str(ID).upper()
    for value in (f"{ID}\n", f"urn:uuid:{ID}", ID.hex):
        with pytest.raises(ValidationError):
            Body(id=value)
