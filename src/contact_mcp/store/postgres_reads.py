"""How the PostgreSQL backend reads a contact whole, and the server-side functions that run its hottest reads.

A contact is read whole in one statement (one snapshot): its columns, and its methods and identities as JSON
arrays of objects keyed like the record's fields (`WHOLE_CONTACT`, `WHOLE_COLUMNS`).

The reads every get_contact, upsert_contact and create_contact makes are PL/pgSQL functions (`functions`, created
by schema version 3): a function's statements are planned once per server connection and their plans kept, where a
statement sent by the client is parsed and planned on every call, because the backend prepares nothing
(`prepare_threshold=None`, for PgBouncer in transaction mode). Planning was about 40% of PostgreSQL's CPU per
upsert (`log_planner_stats`); through the functions PostgreSQL spends about half as much on upsert's first round
trip and a third less on a get (bench/FINDINGS.md). A function is an object of the schema, so PgBouncer does not
get in the way.

- `contact_whole(id)`: the contact with that id, whole (no row when there is none).
- `phone_holders(phone, limit)`: the ids of the contacts holding a phone, oldest first, at most `limit`.
- `upsert_candidates(keys, user_id, email)`: what upsert matches on, locked and read whole, in one call. It takes
  the transaction-scoped advisory locks on `keys` (each once, in key order), then locks the candidate rows
  (`FOR UPDATE`, in row order), then reads them whole. The function is VOLATILE, so under READ COMMITTED each of
  its statements takes a new snapshot: the read sees what the previous holder of a lock committed, exactly as when
  the three statements were sent one after the other.

The functions' text is rendered from the SQL here, so a change to it must reach databases already at version 3:
append a migration that creates them again (`functions(replace=True)`) and record the new digest
(`migrations.postgres.FUNCTIONS_DIGEST`; a test compares it with the rendering's).
"""

from __future__ import annotations

from typing import Final, LiteralString


def primary_value(contacts: LiteralString, kind: LiteralString) -> LiteralString:
    """SQL for the value of a contact's primary method of `kind`; `contacts` names the contacts row."""
    return f"(SELECT value FROM methods WHERE contact_seq = {contacts}.seq AND kind = '{kind}' AND is_primary)"


def lock_keys(keys: LiteralString, verb: LiteralString = "SELECT") -> LiteralString:
    """SQL taking the transaction-scoped advisory locks whose keys are the bigint array `keys` (`verb`: PERFORM in
    a function's body). Each key once, in key order, so two calls needing the same locks never wait for each other
    in a cycle."""
    return f"{verb} pg_advisory_xact_lock(k) FROM (SELECT DISTINCT unnest({keys}) AS k ORDER BY k) AS keys"


# A whole contact's columns, in the order a `WHOLE_CONTACT` row has them, with their types (a function's result).
_WHOLE_TYPED: Final[tuple[tuple[LiteralString, LiteralString], ...]] = (
    ("seq", "bigint"), ("id", "text"), ("user_id", "text"), ("username", "text"), ("name", "text"),
    ("display_name", "text"), ("locale", "text"), ("profile_picture", "text"), ("companies", "jsonb"),
    ("custom_fields", "jsonb"), ("roles", "jsonb"), ("subscribed_to_changelog", "boolean"),
    ("merged_into", "text"), ("created_at", "text"), ("updated_at", "text"),
)  # fmt: skip
WHOLE_COLUMNS: Final = tuple(name for name, _ in _WHOLE_TYPED)
WHOLE_CONTACT: Final[LiteralString] = (
    "SELECT c.seq, c.id, c.user_id, c.username, c.name, c.display_name, c.locale, c.profile_picture, c.companies, "
    "c.custom_fields, c.roles, c.subscribed_to_changelog, c.merged_into, c.created_at, c.updated_at, "
    "(SELECT coalesce(json_agg(json_build_object('id', m.id, 'channel', m.channel, 'type', m.type, "
    "'raw_value', m.raw_value, 'value', m.value, 'primary', m.is_primary, 'verified_at', m.verified_at, "
    "'verification_source', m.verification_source, 'verification_method', m.verification_method, "
    "'created_at', m.created_at) ORDER BY m.seq), '[]') FROM methods m WHERE m.contact_seq = c.seq), "
    "(SELECT coalesce(json_agg(json_build_object('id', i.id, 'channel_type', i.channel_type, "
    "'identifier', i.identifier, 'channel_id', i.channel_id, 'created_at', i.created_at) ORDER BY i.seq), '[]') "
    "FROM identities i WHERE i.contact_seq = c.seq) "
    "FROM contacts c"
)
_WHOLE_RESULT: Final[LiteralString] = (
    "TABLE (" + ", ".join(f"{name} {kind}" for name, kind in _WHOLE_TYPED) + ", methods json, identities json)"
)


def upsert_candidates_where(user_id: LiteralString, email: LiteralString) -> LiteralString:
    """The rows upsert matches on: the user_id's contact, its survivor when it was merged (`merged_into` is always
    one hop), and the email's contact: the oldest holding it as its primary, else the oldest holding it at all."""
    by_email = (
        f"(SELECT contact_seq FROM methods WHERE value = {email} AND kind = 'email' "
        "ORDER BY is_primary DESC, contact_seq LIMIT 1)"
    )
    return (
        f"user_id = {user_id} OR id = (SELECT merged_into FROM contacts WHERE user_id = {user_id}) OR seq = {by_email}"
    )


# The contacts holding a phone (at most a limit of them, oldest first): who create_contact says shares it.
_PHONE_HOLDERS: Final[LiteralString] = (
    "SELECT c.id FROM methods m JOIN contacts c ON c.seq = m.contact_seq WHERE m.value = p_phone AND m.kind = 'phone' "
    "GROUP BY m.contact_seq, c.id ORDER BY m.contact_seq LIMIT p_limit"
)


def functions(*, replace: bool = False) -> tuple[LiteralString, ...]:
    """The statements creating the functions (`replace`: or replacing them, in a later migration). Their result
    columns are named like the table's, so `#variable_conflict use_column` lets the bodies name columns as usual."""
    create: LiteralString = "CREATE OR REPLACE FUNCTION" if replace else "CREATE FUNCTION"
    where = upsert_candidates_where("p_user_id", "p_email")
    return (
        f"""{create} contact_whole(p_id text) RETURNS {_WHOLE_RESULT}
        LANGUAGE plpgsql STABLE AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY {WHOLE_CONTACT} WHERE c.id = p_id;
        END $$""",
        f"""{create} upsert_candidates(p_keys bigint[], p_user_id text, p_email text) RETURNS {_WHOLE_RESULT}
        LANGUAGE plpgsql VOLATILE AS $$
        #variable_conflict use_column
        BEGIN
            {lock_keys("p_keys", "PERFORM")};
            PERFORM 1 FROM contacts WHERE {where} ORDER BY seq FOR UPDATE;
            RETURN QUERY {WHOLE_CONTACT} WHERE {where};
        END $$""",
        f"""{create} phone_holders(p_phone text, p_limit integer) RETURNS TABLE (id text)
        LANGUAGE plpgsql STABLE AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY {_PHONE_HOLDERS};
        END $$""",
    )


CONTACT_BY_ID: Final = "SELECT * FROM contact_whole(%s)"
UPSERT_CANDIDATES: Final = "SELECT * FROM upsert_candidates(%s::bigint[], %s, %s)"
PHONE_HOLDERS: Final = "SELECT * FROM phone_holders(%s, %s)"
