"""The duplicates benchmark's own rules: its labelled set means what it says, and its counting is right."""

from __future__ import annotations

from collections import defaultdict

from bench.duplicates import Person, as_row, labelled_set, quality

from contact_mcp.store.duplicates import mailbox

PEOPLE = {
    str(k): [(f"rec-{k}-org", given, surname), (f"rec-{k}-dup-0", given[:-1] + "x", surname)]
    for k, (given, surname) in enumerate(
        [("william", "gates"), ("ada", "lovelace"), ("grace", "hopper"), ("alan", "turing")] * 25
    )
}


def test_the_labelled_set_keeps_its_distractors_what_they_claim_to_be() -> None:
    people = labelled_set(PEOPLE, copies=2, seed=3)
    orgs = {p.entity: p for p in people if p.role == "org"}

    family = [p for p in people if p.role == "family"]
    namesakes = [p for p in people if p.role == "namesake"]
    assert family and namesakes
    for member in family:
        org = orgs[member.entity.removesuffix("-family")]
        assert member.phones == org.phones and member.name != org.name
    for namesake in namesakes:
        org = orgs[namesake.entity.removesuffix("-namesake")]
        assert namesake.name == org.name and namesake.phones != org.phones and namesake.emails != org.emails


def test_no_two_people_share_a_mailbox_or_a_phone_by_accident() -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for person in labelled_set(PEOPLE, copies=2, seed=5):
        email, phone, _, _ = as_row(person)
        base = person.entity.removesuffix("-family").removesuffix("-namesake")
        if email is not None:
            owners[mailbox(email)[0]].add(person.entity)
        if phone is not None:
            owners[phone].add(base)
    assert all(len(entities) == 1 for entities in owners.values())


def test_quality_counts_pairs() -> None:
    by_id = {
        "a1": Person("a", "org", "A"),
        "a2": Person("a", "tag", "A"),
        "a3": Person("a", "phone", "A"),
        "b1": Person("b", "org", "B"),
        "f": Person("a-family", "family", "F"),
    }

    found = quality([["a1", "a2", "f"]], by_id)

    assert (found["true_pairs"], found["reported_pairs"]) == (3, 3)
    assert (found["precision"], found["recall"]) == (1 / 3, 1 / 3)
    assert found["family_grouped"] == 1
    assert found["recall_by_scenario"] == {"phone": 0.0, "tag": 1.0}
