"""Names as people write them (webapp/domain/matching/names.py) and the names table files (variants.py)."""
import pytest

from webapp.domain.matching import names, variants

RULES = variants.load()


@pytest.mark.parametrize("payer, customer, rule", [
    ("J B OCEN", "John Bosco Ocen", "initials J B → John Bosco"),
    ("LWANGA P", "Peter Lwanga", "initials P → Peter"),
    ("MRS MARGARET NJOROGE", "Margaret Njoroge", "title MRS dropped"),
    ("M. W. KARANJA", "Mary Wanjiru Karanja", "initials M W → Mary Wanjiru"),
    ("M.W. KARANJA", "Mary Wanjiru Karanja", "initials M W → Mary Wanjiru"),
    ("H. TARIQ", "Hamza Tariq", "initials H → Hamza"),
    ("R C SHARMA", "Ramesh Chandra Sharma", "initials R C → Ramesh Chandra"),
    ("MOHD UMER FAROOQ", "Muhammad Umar Farooq", "MOHD → Muhammad (spelling variant)"),
    ("YOUSUF ALI", "Ali Yusuf", "word order ignored"),
    ("CHAUDHARY ALI RAZA", "Ali Raza Choudhury", "CHAUDHARY → Choudhury (spelling variant)"),
    ("ALHAJI MUSA KATO", "Musa Kato", "title ALHAJI dropped"),
    ("STEPHEN MUTUA", "Rev Stephen Mutua", "customer's title Rev dropped"),
    ("A R SHEIKH", "Abdul Rehman Sheikh", "initials A R → Abdul Rehman"),
    ("JOSÉ NÚÑEZ", "Jose Nunez", "same name"),
    ("SARAH OCONNOR", "Sarah O'Connor", "same name"),
    ("AFTAB AHMAD", "Aftaab Ahmed", "AFTAB sounds like Aftaab"),
])
def test_names_that_are_one_persons_say_which_rule_matched(payer, customer, rule):
    found = names.compare(payer, customer, RULES)
    assert found is not None
    assert rule in found.explain()


@pytest.mark.parametrize("payer, customer", [
    ("J B", "John Bosco"),  # initials alone prove nothing
    ("HASSAN ALI", "Husain Ali"),  # two names, not two spellings
    ("SANJAY PATEL", "Sanjay Patil"),  # a changed letter needs the table
    ("OKELLO", "Brian Okello"),  # one word of a two-word name
    ("GRACE NAMUSOKE", "Grace Nakato"),
    ("J MUKASA", "Peter Mukasa"),
    ("MUHAMMAD FAROOQ KHAN", "Muhammad Umar Farooq"),
    ("SHEIKH", "Sheikh Ahmed"),
    ("", "Jane Doe"),
])
def test_names_of_other_people_do_not_match(payer, customer):
    assert names.compare(payer, customer, RULES) is None


def test_two_customers_sharing_initials_both_match_so_neither_is_chosen_by_name():
    assert names.compare("J MUKASA", "Joseph Mukasa", RULES) is not None
    assert names.compare("J MUKASA", "Juliet Mukasa", RULES) is not None


def test_a_name_is_remembered_by_its_folded_key():
    assert names.key("Mrs. J.B. Ocen", RULES) == names.key("OCEN J B", RULES) == "b j ocen"
    assert names.key("Mohd Umer", RULES) == names.key("Muhammad Umar", RULES)
    assert names.key("", RULES) == ""


def test_a_long_name_is_cut_to_a_bounded_size():
    parsed = names.parse("A" * 10_000 + " " + "B " * 5_000, RULES)
    assert len(parsed.words) <= names.MAX_WORDS and all(len(w.folded) <= names.MAX_WORD for w in parsed.words)


def test_a_business_file_adds_titles_and_replaces_a_region(tmp_path):
    own = tmp_path / "name_variants.toml"
    own.write_text('honorifics = ["chief"]\n[[region]]\nname = "north_america"\n'
                   'variants = [["nicholas", "nick", "nicolas"]]\n', encoding="utf-8")
    rules = variants.load(own)
    assert names.compare("CHIEF NICK THOMPSON", "Nicholas Thompson", rules) is not None
    assert rules.variants.get("phillip") is None  # the built-in north_america region was replaced
    assert rules.variants["mohd"] == "muhammad"  # other regions stay


@pytest.mark.parametrize("text, problem", [
    ("honorifics = 3", "honorifics must be a list"),
    ('colour = "red"', "unknown key(s) colour"),
    ('[[region]]\nvariants = [["a", "b"]]', "`name` is required"),
    ('[[region]]\nname = "x"\nvariants = [["solo"]]', "two or more spellings"),
    ('[[region]]\nname = "x"\nvariants = [["two words", "b"]]', "is not a single word"),
    ('[[region]]\nname = "x"\nvariants = [["ali", "aly"], ["umar", "omar"], ["aly", "omar"]]',
     "is a spelling of both"),
    ("not toml at all [", "name_variants.toml"),
])
def test_a_bad_names_file_is_refused_naming_the_problem(tmp_path, text, problem):
    own = tmp_path / "name_variants.toml"
    own.write_text(text, encoding="utf-8")
    with pytest.raises(variants.VariantsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        variants.load(own)


def test_matching_uses_the_instance_folders_names_file_and_survives_a_broken_one(ctx, caplog):
    from webapp.config import settings
    from webapp.domain import options

    own = settings().instance_path / options.NAMES_FILE
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text('[[region]]\nname = "north_america"\nvariants = [["nicholas", "nick"]]\n', encoding="utf-8")
    assert options.match_settings().names.variants["nick"] == "nicholas"
    own.write_text("honorifics = 3\n", encoding="utf-8")
    rules = options.match_settings().names
    assert "nick" not in rules.variants and rules.variants["mohd"] == "muhammad"
    assert "honorifics must be a list" in caplog.text
