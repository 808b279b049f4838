"""The pure duplicate rules: mailboxes by provider, name similarity, pair scores, blocking and grouping."""

from __future__ import annotations

import pytest

from contact_mcp.store.duplicates import (
    BLOCK_LIMIT,
    Candidate,
    candidate_pairs,
    find_groups,
    keys_of,
    mailbox,
    name_similarity,
    score_pair,
)


@pytest.mark.parametrize(
    ("address", "box"),
    [
        ("Ada.Lovelace+crm@gmail.com", "adalovelace@gmail.com"),
        ("a.d.a@googlemail.com", "ada@gmail.com"),
        ("ada.l+x@hotmail.com", "ada.l@hotmail.com"),
        ("ada.l+x@live.com", "ada.l@live.com"),
        ("ada+x@me.com", "ada@me.com"),
        ("ada+x@fastmail.com", "ada@fastmail.com"),
        ("ada.l+x@yahoo.com", "ada.l+x@yahoo.com"),
        ("ada+x@analytical.org", "ada+x@analytical.org"),
    ],
)
def test_mailbox_applies_only_the_provider_s_documented_rules(address: str, box: str) -> None:
    assert mailbox(address)[0] == box


def test_a_tag_on_an_unknown_domain_is_only_a_hint() -> None:
    tagged = keys_of(Candidate(key=1, id="a", emails=("ada+crm@analytical.org",)))
    provider = keys_of(Candidate(key=2, id="b", emails=("ada+crm@gmail.com",)))

    assert tagged["tagged"] == {"ada@analytical.org", "ada+crm@analytical.org"}
    assert "mailbox" not in tagged
    assert (provider["mailbox"], "tagged" in provider) == ({"ada@gmail.com"}, False)


@pytest.mark.parametrize(
    ("a", "b", "alike"),
    [
        ("Mitchell Green", "Mitchel Green", True),
        ("William Gates", "Bill Gates", True),
        ("J. Smith", "John Smith", True),
        ("Green Mitchell", "Mitchell Green", True),
        ("Isabelle", "Isabelle Donaldson", True),
        ("Van Wijk James", "James Van Wijk", True),
        ("Black Well", "Blackwell", True),
        ("Thom As Clarke", "Thomas Clarke", True),
        ("Thom As Clarke", "Sam Clarke", False),
        ("John Smith", "Jane Smith", False),
        ("Ada Lovelace", "Grace Hopper", False),
    ],
)
def test_name_similarity(a: str, b: str, alike: bool) -> None:
    similarity = name_similarity(a, b)
    assert similarity is not None
    assert (similarity >= 0.85) is alike


def test_a_name_alone_never_makes_a_pair() -> None:
    a = Candidate(key=1, id="a", name="John Smith", emails=("john@gmail.com",))
    b = Candidate(key=2, id="b", name="John Smith", emails=("jsmith@yahoo.com",))

    assert score_pair(a, b) == (0.0, [])
    assert candidate_pairs([a, b]) == set()


def test_a_shared_phone_with_the_same_given_name_is_one_person_a_family_member_is_not() -> None:
    phone = ("+14155550100",)
    hannah = Candidate(key=1, id="a", name="Hannah Dixon", emails=("hannah.dixon@gmail.com",), phones=phone)
    married = Candidate(key=2, id="b", name="Hannah Bloomfield", emails=("hb@icloud.com",), phones=phone)
    brother = Candidate(key=3, id="c", name="Oliver Dixon", emails=("oliver.dixon@gmail.com",), phones=phone)

    score, evidence = score_pair(hannah, married)
    assert score >= 0.8
    assert [(e.kind, e.value) for e in evidence] == [("phone", "+14155550100"), ("name", "given name")]
    assert score_pair(hannah, brother)[0] < 0.5
    assert [g.ids for g in find_groups([hannah, married, brother])] == [["a", "b"]]


def test_colleagues_of_one_given_name_at_one_company_stay_apart() -> None:
    a = Candidate(key=1, id="a", name="Jack Stubbs", emails=("jack.stubbs@corp.example",))
    b = Candidate(key=2, id="b", name="Jack Stanley", emails=("jack.stanley@corp.example",))

    assert score_pair(a, b)[0] < 0.8
    assert find_groups([a, b]) == []


def test_two_user_ids_weaken_a_shared_phone() -> None:
    phones = ("+14155550100",)
    a = Candidate(key=1, id="a", name="John Smith", phones=phones)
    b = Candidate(key=2, id="b", name="John Smith", phones=phones)
    a_account = Candidate(key=1, id="a", name="John Smith", user_id="u1", phones=phones)
    b_account = Candidate(key=2, id="b", name="John Smith", user_id="u2", phones=phones)

    assert score_pair(a_account, b_account)[0] < 0.8 <= score_pair(a, b)[0]


def test_a_big_domain_is_split_by_name_and_still_finds_the_pair() -> None:
    given = [
        "Ada",
        "Ben",
        "Cleo",
        "Dev",
        "Eve",
        "Finn",
        "Gus",
        "Hana",
        "Ivo",
        "Jude",
        "Kai",
        "Lena",
        "Milo",
        "Nora",
        "Otto",
        "Pia",
        "Quin",
        "Rosa",
        "Sven",
        "Tara",
    ]
    family = ["Abbott", "Brooks", "Carver", "Dunn", "Ellis", "Frost", "Grant", "Hale", "Irwin", "Joyce"]
    staff = [
        Candidate(key=k, id=f"c{k}", name=f"{given[k % 20]} {family[k // 20]}", emails=(f"p{k}@corp.example",))
        for k in range(len(given) * len(family))
    ]
    assert len(staff) > BLOCK_LIMIT
    twin = Candidate(key=10_000, id="twin", name="Hana Abbott", emails=("hana.abbott@corp.example",))

    pairs = candidate_pairs([*staff, twin])

    assert len(pairs) < len(staff) * len(staff) / 4
    groups = find_groups([*staff, twin])
    assert [g.ids for g in groups] == [["c7", "twin"]]


def test_a_group_s_score_is_its_weakest_joining_pair() -> None:
    a = Candidate(key=1, id="a", name="Ada Lovelace", emails=("ada@gmail.com",))
    b = Candidate(key=2, id="b", name="Ada Lovelace", emails=("a.da@gmail.com",), phones=("+14155550100",))
    c = Candidate(key=3, id="c", name="Ada Lovelase", phones=("+14155550100",))

    (group,) = find_groups([c, b, a])

    assert group.ids == ["a", "b", "c"]
    assert group.score == min(score_pair(a, b)[0], score_pair(b, c)[0])
