import random

import pytest

from webapp.domain.references import (
    ALPHABET,
    Quoted,
    body,
    find_references,
    near_references,
    new_reference,
    normalize,
)


def test_the_alphabet_has_no_look_alike_characters():
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


def test_a_new_reference_is_prefix_dash_six_alphabet_characters():
    reference = new_reference()
    prefix, _, rest = reference.partition("-")
    assert prefix == "PW"
    assert len(rest) == 6 and set(rest) <= set(ALPHABET)


def test_new_references_differ_and_follow_the_given_rng():
    assert new_reference(rng=random.Random(7)) == new_reference(rng=random.Random(7))
    many = {new_reference() for _ in range(2000)}
    assert len(many) == 2000


def test_a_reference_can_have_another_prefix_and_length():
    reference = new_reference(prefix="inv", length=8, rng=random.Random(1))
    assert reference.startswith("INV-") and len(reference) == 12


def test_a_reference_shorter_than_four_is_refused():
    with pytest.raises(ValueError, match="at least 4"):
        new_reference(length=3)


@pytest.mark.parametrize("text", ["PW-7KQ2M9", "pw 7kq2m9", "PW7KQ2M9", " p w-7kq 2m9 ", "ＰＷ－７ＫＱ２Ｍ９"])
def test_normalize_ignores_case_spaces_dashes_and_full_width(text):
    assert normalize(text) == "PW7KQ2M9"


def test_body_is_the_generated_part_of_our_own_references_only():
    assert body("PW-7KQ2M9") == "7KQ2M9"
    assert body("INV-2024-001") is None  # free-form: has 0 and 1, never bare-matched
    assert body("7KQ2M9") is None


@pytest.mark.parametrize("note, found", [
    ("Booking PW-7KQ2M9 thanks", ["PW-7KQ2M9"]),
    ("pw 7kq2m9", ["PW-7KQ2M9"]),
    ("ref:PW7KQ2M9.", ["PW-7KQ2M9"]),
    ("PW 7KQ 2M9 and pw-abcdef", ["PW-7KQ2M9", "PW-ABCDEF"]),
    ("PW-7KQ2M9 again PW7KQ2M9", ["PW-7KQ2M9"]),
    ("PW-7KQ2M0", []),  # 0 is not in the alphabet: a typo, not a reference
    ("PW-7KQ2M9X", []),  # too long
    ("PW-7KQ2 M9AB", []),
    ("thanks for the room", []),
    ("", []),
], ids=["in-a-sentence", "lower-case-spaced", "no-dash", "split-and-two", "repeated-once",
        "zero-typed", "too-long", "runs-past-the-body", "no-reference", "empty"])
def test_find_references_in_messy_notes(note, found):
    assert find_references(note) == found


def test_find_references_with_another_prefix():
    assert find_references("paid inv-23456789", prefix="INV", length=8) == ["INV-23456789"]


def test_a_quote_of_the_body_alone_counts_for_our_own_references():
    quoted = Quoted("for 7kq2m9 thank you")
    assert quoted.quotes("PW-7KQ2M9")
    assert not quoted.quotes("PW-7KQ2M8")


def test_a_free_form_reference_is_quoted_across_separators():
    assert Quoted("invoice inv/2024/001 paid").quotes("INV-2024-001")
    assert not Quoted("invoice inv-2024-0011").quotes("INV-2024-001")


@pytest.mark.parametrize("note", ["PW-7KQ2N9", "pw 7kq2m", "PW-7KQ2M0", "PW7KQX2M9", "7KQ2M8 thanks"],
                         ids=["substituted", "dropped", "zero-for-nine", "inserted", "bare-body-typo"])
def test_one_typing_mistake_is_a_near_reference(note):
    assert near_references(note, ["PW-7KQ2M9", "PW-ABCDEF"]) == ["PW-7KQ2M9"]


def test_an_exact_quote_is_not_near_and_two_mistakes_are_too_many():
    assert near_references("PW-7KQ2M9", ["PW-7KQ2M9"]) == []
    assert near_references("PW-7KQ3N9", ["PW-7KQ2M9"]) == []
    assert near_references("PW-7KQ3N9", ["PW-7KQ2M9"], max_distance=2) == ["PW-7KQ2M9"]


def test_near_reports_what_the_payer_wrote():
    assert Quoted("paid PW 7KQ2N9").near("PW-7KQ2M9") == "PW7KQ2N9"
    assert Quoted(None).near("PW-7KQ2M9") is None
