"""The size limits of what a contact may hold and what a result may carry: the numbers, in one place.

The tools check a call's arguments against them (one call's `custom_fields`, `roles`); the store checks what a
contact would hold *after* merging (custom fields accumulate across upserts), so no sequence of valid calls grows
one contact past them: a one-field upsert never rewrites megabytes, and a contact's custom fields and roles stay
around the size of one result (`MAX_RESULT_BYTES`). Imports nothing.
"""

from __future__ import annotations

from typing import Final

MAX_CUSTOM_FIELD_KEYS: Final = 100
"""Keys a contact's `custom_fields` may hold after an upsert's keys are merged into the stored ones."""
MAX_CUSTOM_KEY_LENGTH: Final = 100
"""Characters in one custom field's key."""
MAX_CUSTOM_VALUE_LENGTH: Final = 1_000
"""Characters in one custom field's string value."""
MAX_ROLES: Final = 50
"""Roles a contact may hold (an upsert's `roles` replace the stored ones)."""
MAX_ROLE_LENGTH: Final = 100
"""Characters in one role."""
MAX_TEXT_LENGTHS: Final = {
    "user_id": 500,
    "name": 500,
    "username": 100,
    "display_name": 200,
    "locale": 10,
    "profile_picture": 500,
    "email": 500,
    "phone": 500,
    "channel": 40,
    "value": 500,
    "identifier": 320,
    "channel_id": 100,
    "verification_source": 100,
}
"""Characters in each text a contact holds, by the name of the tool argument that sets it; the index of every
value a contact is found by must stay within PostgreSQL's 2,704 bytes (four bytes a character)."""
MAX_COMPANIES: Final = 50
"""Companies one upsert may give (they replace the stored ones; a merge lists the union of its contacts')."""
MAX_RESULT_BYTES: Final = 100_000
"""Bytes of a result's JSON a model is handed (a common client's tool-output budget is ~25k tokens)."""
