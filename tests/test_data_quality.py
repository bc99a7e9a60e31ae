"""Quality filters (datatrove's Gopher, C4, FineWeb rules) and PII scrubbing as doc ops."""

import string

import pytest

from aigc_jax.data import docops, quality  # noqa: F401  (registers the ops)
from aigc_jax.errors import ConfigError

OPS = docops.OPS

CLEAN = """The Lighthouse Keeper

For more than forty years, the old lighthouse on the northern cape was kept by a single family. \
Each evening the keeper climbed the narrow stairs to light the lamp, and each morning he wrote \
the weather in a leather book that is now kept in the town library.
The work was lonely, but it was never dull. Storms came in from the sea with little warning, and \
ships that had lost their way would look for the steady light to guide them home.
In 1952 the lamp was replaced by an electric beacon, and the family moved to the village. \
Visitors can still climb the tower in summer, and the view from the top is worth the effort.
"""
BODY = CLEAN.split("\n\n", 1)[1].strip()  # what C4 keeps: the title has no terminal punctuation
SENTENCES = [s.strip() + "." for s in BODY.replace("\n", " ").split(".") if s.strip()]


def words(n, start=0, width=5):
  """n distinct made-up words ('aaaaa', 'aaaab', ...), so no n-gram repeats by accident."""
  out = []
  for i in range(start, start + n):
    w = ""
    for _ in range(width):
      w, i = string.ascii_lowercase[i % 26] + w, i // 26
    out.append(w)
  return out


def repeats(m, r, n_words):
  """r copies of one m-word phrase, each followed by distinct filler: n_words words in all."""
  phrase, per, out = words(m, start=10**5), (n_words - r * m) // r, []
  for k in range(r):
    out += phrase + words(per, start=k * per)
  return " ".join(out)


@pytest.fixture(scope="module")
def f():
  """Each op built once with its defaults (spacy's blank English pipeline loads on first use)."""
  return {name: OPS[name]() for name in
          ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "pii")}


def test_ops_are_registered_with_their_kinds(f):
  assert [f[n].kind for n in sorted(f)] == ["map_filter", "filter", "filter", "filter", "map"]


def test_clean_paragraph_passes_all_four(f):
  assert f["gopher_quality"].fn(CLEAN) is None
  assert f["gopher_repetition"].fn(CLEAN) is None
  assert f["fineweb_quality"].fn(CLEAN) is None
  assert f["c4_quality"].fn(CLEAN) == (BODY, None)


# ---- gopher_quality: one document per rule, each passing every rule checked before it

SENTENCE = "The keeper wrote the weather in a book that has survived to this day."


GOPHER_QUALITY_CASES = [
    ("gopher_short_doc", "The cat sat on the mat with the dog."),
    ("gopher_below_avg_threshold", "It is to be or not to be, and so on. " * 6),
    ("gopher_above_avg_threshold", "Internationalization and institutionalization. " * 20),
    ("gopher_too_many_hashes", BODY + " #" * 20),
    ("gopher_too_many_ellipsis", BODY.replace(",", "...").replace(" the ", " the … ")),
    ("gopher_too_many_bullets", "\n".join(f"- {SENTENCE}" for _ in range(5))),
    ("gopher_too_many_end_ellipsis", f"{SENTENCE} {SENTENCE}\n{SENTENCE}...\n" * 3),
    ("gopher_below_alpha_threshold", SENTENCE + " 123456" * 60),
    ("gopher_enough_stop_words", "Bright lamps guide ships across dark cold water. " * 8),
]


@pytest.mark.parametrize("reason, doc", GOPHER_QUALITY_CASES)
def test_gopher_quality_rules(f, reason, doc):
  assert f["gopher_quality"].fn(doc) == reason


def test_gopher_quality_long_doc():
  assert OPS["gopher_quality"](max_doc_words=60).fn(CLEAN) == "gopher_long_doc"


def test_gopher_quality_thresholds(f):
  short = "The cat sat on the mat with the dog."
  assert f["gopher_quality"].fn(short) == "gopher_short_doc"
  assert OPS["gopher_quality"](min_doc_words=5).fn(short) is None
  assert OPS["gopher_quality"](max_doc_words=None, min_stop_words=None).fn(CLEAN) is None
  no_stop = "Bright lamps guide ships across dark cold water. " * 8
  assert OPS["gopher_quality"](min_stop_words=0).fn(no_stop) is None


# ---- gopher_repetition

ONE_LINE = BODY.replace("\n", " ")


GOPHER_REPETITION_CASES = [
    ("empty", ""),
    ("dup_para_frac", "\n\n".join([SENTENCES[0], SENTENCES[1], SENTENCES[0]])),
    # one duplicate of four paragraphs (<= 0.3) but it is most of the characters
    ("dup_para_char_frac", "\n\n".join([BODY, "Short one.", "Short two.", BODY])),
    ("dup_line_frac", "\n".join(SENTENCES + ["Next."] * 5)),
    ("dup_line_char_frac", "\n".join([ONE_LINE, "Short one.", "Short two.", "Three.", ONE_LINE])),
    # one phrase repeated among distinct words; its m-gram is just over the fraction for m
    ("top_2_gram", repeats(2, 4, 29)),
    ("top_3_gram", repeats(3, 4, 57)),
    ("top_4_gram", repeats(4, 4, 90)),
    # repeated phrases sized so that the n-gram rule is the first over its fraction
    ("duplicated_5_n_grams", repeats(20, 2, 88)),
    ("duplicated_6_n_grams", repeats(6, 6, 157)),
    ("duplicated_7_n_grams", repeats(7, 6, 198)),
    ("duplicated_8_n_grams", repeats(8, 6, 248)),
    ("duplicated_9_n_grams", repeats(9, 6, 306)),
    ("duplicated_10_n_grams", repeats(10, 6, 379)),
]


@pytest.mark.parametrize("reason, doc", GOPHER_REPETITION_CASES)
def test_gopher_repetition_rules(f, reason, doc):
  assert f["gopher_repetition"].fn(doc) == reason


def test_gopher_repetition_thresholds(f):
  doc = "\n".join(SENTENCES + ["Next."] * 5)
  assert OPS["gopher_repetition"](dup_line_frac=0.5).fn(doc) is None
  assert OPS["gopher_repetition"](dup_line_frac=None).fn(doc) is None
  assert OPS["gopher_repetition"](top_n_grams=((2, 0.5),)).fn(repeats(2, 4, 29)) is None


# ---- c4_quality: page rules drop, line rules rewrite

def test_c4_page_rules(f):
  c4 = f["c4_quality"].fn
  assert c4(BODY + "\nLorem ipsum dolor sit amet, consectetur.") == (
      BODY + "\nLorem ipsum dolor sit amet, consectetur.", "lorem_ipsum")
  assert c4(BODY + "\nThe set {1, 2, 3} has three members.")[1] == "curly_bracket"
  assert c4("One sentence. Two sentences.\nThree sentences here. Four.") == (
      "One sentence. Two sentences.\nThree sentences here. Four.", "too_few_sentences")
  assert c4("") == ("", "too_few_sentences")


def test_c4_line_rules_rewrite(f):
  doc = "\n".join([
      "Home | About | Contact",  # no terminal punctuation
      "  " + SENTENCES[0] + "[1]  ",  # citation mark removed, line stripped
      "It goes on and on...",  # ellipsis is not terminal
      "Yes indeed.",  # fewer than 3 words
      "Please enable JavaScript to view the comments.",
      "This site uses cookies to improve your experience.",
      "Read our Terms of Use before you post.",
      "",
      *SENTENCES[1:],
      "Some claim it was haunted.[citation needed]",
  ])
  text, reason = f["c4_quality"].fn(doc)
  assert reason is None
  assert text == "\n".join([SENTENCES[0], *SENTENCES[1:], "Some claim it was haunted."])


def test_c4_options():
  long_word = "The keeper wrote in Pneumonoultramicroscopicsilicovolcanoconiosis ink."
  text, reason = OPS["c4_quality"](max_word_length=20).fn(BODY + "\n" + long_word)
  assert (text, reason) == (BODY, None)
  assert OPS["c4_quality"]().fn(BODY + "\n" + long_word) == (BODY + "\n" + long_word, None)
  # sentences instead of lines, joined by spaces
  text, reason = OPS["c4_quality"](split_paragraph=False).fn(BODY + " Home | About")
  assert reason is None and text == BODY.replace("\n", " ")
  assert OPS["c4_quality"](min_num_sentences=-1).fn("One sentence here.") == (
      "One sentence here.", None)
  keep = OPS["c4_quality"](filter_no_terminal_punct=False, filter_javascript=False,
                           filter_policy=False, remove_citations=False, min_words_per_line=-1)
  doc = "\n".join(["Title", "Enable JavaScript now.", "We use cookies.", "A fact.[1]", BODY])
  assert keep.fn(doc) == (doc, None)
  assert OPS["c4_quality"](filter_curly_bracket=False, filter_lorem_ipsum=False).fn(
      BODY + "\nThe set {1, 2} is lorem ipsum.")[1] is None


# ---- fineweb_quality

LONG_LINES = ["The keeper climbed the narrow stairs every evening",
              "Storms came in from the sea with little warning",
              "The family moved to the village after the war",
              "Visitors can still climb the tower in summer"]


FINEWEB_CASES = [
    ("empty", " \n\n  \n"),
    ("line_punct_ratio", "\n".join(LONG_LINES * 2 + [SENTENCES[0]])),
    ("short_line_ratio", "\n".join(["Once.", "Twice.", "Three times.", SENTENCES[0]])),
    ("char_dup_ratio", CLEAN + SENTENCES[0] + "\n" + SENTENCES[0]),
    ("list_ratio", "\n\n".join(["Internationalization considerations.",
                              "Institutionalization consequences.",
                              "Characteristically uncharacteristic.",
                              "Incomprehensibility notwithstanding."])),
]


@pytest.mark.parametrize("reason, doc", FINEWEB_CASES)
def test_fineweb_rules(f, reason, doc):
  assert f["fineweb_quality"].fn(doc) == reason


def test_fineweb_thresholds(f):
  no_punct = "\n".join(LONG_LINES)
  assert f["fineweb_quality"].fn(no_punct) == "line_punct_ratio"
  assert OPS["fineweb_quality"](line_punct_exclude_zero=True).fn(no_punct) is None
  assert OPS["fineweb_quality"](line_punct_thr=0).fn(no_punct) is None
  short = "\n".join(["Once.", "Twice.", "Three times.", SENTENCES[0]])
  assert OPS["fineweb_quality"](short_line_length=4).fn(short) is None
  assert OPS["fineweb_quality"](short_line_thr=0.8).fn(short) is None


def test_bare_false_becomes_the_op_name():
  assert quality._drop_reason(False, "gopher_quality") == "gopher_quality"
  assert quality._drop_reason((False, ""), "c4_quality") == "c4_quality"
  assert quality._drop_reason(True, "c4_quality") is None


# ---- bad arguments fail when the factory is called

@pytest.mark.parametrize("name, kwargs, needle", [
    ("gopher_quality", {"max_bullet_lines_ratio": 1.5}, "max_bullet_lines_ratio=1.5"),
    ("gopher_quality", {"max_non_alpha_words_ratio": -0.1}, "[0, 1]"),
    ("gopher_quality", {"max_doc_words": 0}, "or None to disable"),
    ("gopher_quality", {"min_doc_words": 0}, "min_doc_words=0"),
    ("gopher_quality", {"min_doc_words": 500, "max_doc_words": 100}, "above max_doc_words"),
    ("gopher_quality", {"min_avg_word_length": 12}, "above max_avg_word_length"),
    ("gopher_quality", {"max_symbol_word_ratio": "0.1"}, "max_symbol_word_ratio"),
    ("gopher_repetition", {"dup_line_frac": 2}, "dup_line_frac=2 is out of range"),
    ("gopher_repetition", {"top_n_grams": ((2, 1.5),)}, "top_n_grams[0] max_fraction"),
    ("gopher_repetition", {"dup_n_grams": ((0, 0.1),)}, "dup_n_grams[0] n"),
    ("gopher_repetition", {"dup_n_grams": (5, 0.15)}, "(n, max_fraction) pairs"),
    ("c4_quality", {"max_word_length": 0}, "or -1 to disable"),
    ("c4_quality", {"min_num_sentences": -2}, "min_num_sentences"),
    ("c4_quality", {"split_paragraph": "no"}, "True or False"),
    ("fineweb_quality", {"line_punct_thr": 1.2}, "line_punct_thr=1.2 is out of range"),
    ("fineweb_quality", {"short_line_length": -1}, "short_line_length"),
    ("fineweb_quality", {"new_line_ratio": -0.3}, "new_line_ratio"),
    ("pii", {"email": None}, "must be a string"),
])
def test_bad_arguments(name, kwargs, needle):
  with pytest.raises(ConfigError) as e:
    OPS[name](**kwargs)
  assert name in str(e.value) and needle in str(e.value)


def test_unknown_or_positional_arguments_are_type_errors():
  with pytest.raises(TypeError):
    OPS["gopher_quality"](min_words=5)
  with pytest.raises(TypeError):
    OPS["fineweb_quality"](0.12)  # thresholds are keyword-only


def test_missing_dependency_is_a_config_error(monkeypatch):
  find_spec = quality.importlib.util.find_spec
  monkeypatch.setattr(quality.importlib.util, "find_spec",
                      lambda n, *a: None if n == "spacy" else find_spec(n, *a))
  with pytest.raises(ConfigError, match=r"gopher_quality needs datatrove: pip install"):
    OPS["gopher_quality"]()


# ---- pii

def test_pii_replaces_emails_ips_and_phones(f):
  pii = f["pii"].fn
  assert pii("Write to john.doe@example.com or jane_d+news@mail.co.uk.") == (
      "Write to <EMAIL> or <EMAIL>.")
  assert pii("Servers 8.8.8.8, 192.168.0.1 and 10.0.0.255 answered.") == (
      "Servers <IP>, <IP> and <IP> answered.")
  assert pii("Use 2001:db8:85a3::8a2e:370:7334 or ::ffff:192.0.2.1 now.") == (
      "Use <IP> or <IP> now.")
  phones = ["+1 415 555 2671", "+44 20 7946 0958", "+33 1 23 45 67 89", "+49 (0)30 1234567",
            "+442079460958", "(415) 555-2671", "415-555-2671", "415.555.2671", "415 555 2671",
            "1-800-555-0199", "+1 (415) 555-2671"]
  for p in phones:
    assert pii(f"Call {p} today.") == "Call <PHONE> today.", p


def test_pii_leaves_numbers_alone(f):
  text = ("On 2021-03-04 (03/04/2021) in 2021, pi was 3.14159 and v1.2.3 became 10.0.19041 "
          "then 1.2.3.4.5; 1,234,567 people, +3.5%, a 12-10 score, ISBN 978-3-16-148410-0, "
          "at 12:30:45 by 00:1a:2b:3c:4d:5e, slice x[1::2], localhost ::1 and 555-2671.")
  assert f["pii"].fn(text) == text


def test_pii_deterministic_and_disable(f):
  text = "Mail a@b.org or c@d.org from 8.8.8.8 or 1.1.1.1, phone 415-555-2671."
  out = f["pii"].fn(text)
  assert out == "Mail <EMAIL> or <EMAIL> from <IP> or <IP>, phone <PHONE>."
  assert OPS["pii"]().fn(text) == out == f["pii"].fn(text)
  assert OPS["pii"](email="", phone="").fn(text) == (
      "Mail a@b.org or c@d.org from <IP> or <IP>, phone 415-555-2671.")
  assert OPS["pii"](ip="", email="[email]").fn(text) == (
      "Mail [email] or [email] from 8.8.8.8 or 1.1.1.1, phone <PHONE>.")
  assert OPS["pii"](email="", ip="", phone="").fn(text) == text


def test_pii_public_ips_only():
  pii = OPS["pii"](public_ips_only=True).fn
  assert pii("8.8.8.8 192.168.1.1 127.0.0.1 2001:4860:4860::8888 2001:db8::1:2") == (
      "<IP> 192.168.1.1 127.0.0.1 <IP> 2001:db8::1:2")
