"""Corpus readers: the real data sets, small CoNLL-2003 / CoNLL-U fixtures, and malformed files."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tagger.readers import (
    DataFormatError,
    Sentence,
    read_columns,
    read_conllu,
    read_corpus,
    read_tokens,
    write_columns,
)
from tagger.schemes import convert, detect_scheme
from tests.conftest import DATA

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data sets not found at {DATA}")
reads_corpus = pytest.mark.data


def write(path: Path, text: str, newline: str = "\n", bom: bool = False) -> Path:
    """Write `text` (written with \\n) using the given line end, optionally behind a UTF-8 BOM."""
    data = ("\ufeff" if bom else "") + text.replace("\n", newline)
    path.write_bytes(data.encode("utf-8"))
    return path


# --- real data -------------------------------------------------------------


@reads_corpus
@needs_data
@pytest.mark.parametrize(
    ("name", "sentences", "words"),
    [
        ("en_ewt-ud-dev.conllu", 2001, 25147),
        ("en_ewt-ud-test.conllu", 2077, 25094),
        ("en_ewt-ud-train.conllu", 12544, 204577),
    ],
)
def test_ewt_sentence_and_word_counts(name: str, sentences: int, words: int) -> None:
    corpus = read_corpus(DATA / "ud-english-ewt" / name)
    assert len(corpus) == sentences
    assert sum(len(s.tokens) for s in corpus) == words
    assert all(len(s.tags) == len(s.tokens) for s in corpus)


@reads_corpus
@needs_data
def test_ewt_upos_tag_set_has_17_tags_and_skips_multiword_ranges() -> None:
    corpus = read_conllu(DATA / "ud-english-ewt" / "en_ewt-ud-dev.conllu")
    assert len({tag for s in corpus for tag in s.tags}) == 17
    assert corpus[0] == Sentence(
        ("From", "the", "AP", "comes", "this", "story", ":"),
        ("ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT"),
    )
    assert not any("'" in s.tokens and "didn't" in s.tokens for s in corpus)  # "didn't" is a 29-30 range


@reads_corpus
@needs_data
@pytest.mark.parametrize(
    ("path", "sentences"),
    [
        ("wikiann-en/train.conll", 20000),
        ("wnut17/train.conll", 3394),
        ("wnut17/dev.conll", 1009),
        ("wnut17/test.conll", 1287),
    ],
)
def test_ner_sentence_counts(path: str, sentences: int) -> None:
    corpus = read_corpus(DATA / path)
    assert len(corpus) == sentences
    assert detect_scheme(s.tags for s in corpus) == "IOB2"


@reads_corpus
@needs_data
def test_wnut17_dev_trailing_bom_line_is_not_a_sentence_or_token() -> None:
    corpus = read_columns(DATA / "wnut17" / "dev.conll")
    assert corpus[-1].tokens[-3:] == ("Discivery", "Channel", "!")
    assert not any("\ufeff" in token for s in corpus for token in s.tokens)
    assert all(s.tokens for s in corpus)


# --- CoNLL-2003 style column files --------------------------------------------

CONLL2003 = """\
-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
.  .   O    O

-DOCSTART- -X- -X- O
Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER


"""


def test_reads_conll2003_with_docstart_crlf_bom_and_iob1(tmp_path: Path) -> None:
    path = write(tmp_path / "eng.train", CONLL2003, newline="\r\n", bom=True)
    corpus = read_corpus(path)
    assert corpus == [
        Sentence(("EU", "rejects", "German", "call", "."), ("I-ORG", "O", "I-MISC", "O", "O")),
        Sentence(("Peter", "Blackburn", "Smith"), ("I-PER", "I-PER", "B-PER")),
    ]
    tags = [s.tags for s in corpus]
    assert detect_scheme(tags) == "IOB1"
    assert convert(tags[1], "IOB1", "IOB2") == ["B-PER", "I-PER", "B-PER"]
    assert convert(tags[1], "IOB1", "BIOES") == ["B-PER", "E-PER", "S-PER"]
    assert convert(tags[0], "IOB1", "BIOES") == ["S-ORG", "O", "S-MISC", "O", "O"]


def test_chooses_token_and_tag_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "eng.testa", CONLL2003, newline="\r")  # old Mac line ends
    chunks = read_columns(path, token_column=0, tag_column=2)
    assert chunks[0].tags == ("I-NP", "I-VP", "I-NP", "I-NP", "O")
    pos = read_corpus(path, "conll", token_column=-4, tag_column=1)
    assert pos[1] == Sentence(("Peter", "Blackburn", "Smith"), ("NNP", "NNP", "NNP"))


def test_blank_runs_tab_only_lines_and_missing_final_blank_make_no_empty_sentences(tmp_path: Path) -> None:
    path = write(tmp_path / "x.conll", "\n\nA\tB-LOC\n\t\n\n\nb\tO\nc\tO")
    assert read_columns(path) == [Sentence(("A",), ("B-LOC",)), Sentence(("b", "c"), ("O", "O"))]


def test_write_columns_reads_back(tmp_path: Path) -> None:
    sentences = [Sentence(("New York", "rocks"), ("B-LOC", "O")), Sentence(("hi",), ("O",))]
    out = io.StringIO()
    write_columns(sentences, out)
    assert out.getvalue() == "New York\tB-LOC\nrocks\tO\n\nhi\tO\n\n"
    assert read_columns(write(tmp_path / "out.conll", out.getvalue())) == sentences
    untagged = io.StringIO()
    write_columns([Sentence(("a", "b"))], untagged)
    assert untagged.getvalue() == "a\nb\n\n"
    with pytest.raises(ValueError, match="tab or line break"):
        write_columns([Sentence(("a\tb",), ("O",))], io.StringIO())


def test_read_tokens_one_sentence_per_line(tmp_path: Path) -> None:
    path = write(tmp_path / "input.txt", "Hello  world !\n\n  Bye .\n", bom=True)
    assert read_tokens(path) == [Sentence(("Hello", "world", "!")), Sentence(("Bye", "."))]
    assert read_corpus(path) == read_tokens(path)


# --- format detection ------------------------------------------------------------

CONLLU = """\
# sent_id = 1
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
3.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t3:conj\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_
"""


def test_conllu_skips_ranges_and_empty_nodes_and_reads_xpos(tmp_path: Path) -> None:
    path = write(tmp_path / "tiny.conllu", CONLLU)  # no blank line at the end
    assert read_conllu(path) == [Sentence(("Do", "n't", "go", "."), ("AUX", "PART", "VERB", "PUNCT"))]
    assert read_corpus(path, tag_field="xpos")[0].tags == ("VBP", "RB", "VB", ".")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("tiny.tok", CONLLU, "tokens"),  # the suffix wins over the content
        ("tiny.txt", CONLLU, "conllu"),  # .txt is sniffed: CoNLL copies often end in .txt
        ("eng.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\n", "conll"),
        ("tiny.data", CONLLU, "conllu"),
        ("tiny.data", "EU\tB-ORG\nrejects\tO\n", "conll"),
        ("tiny.data", "-DOCSTART- O\nEU B-ORG\n", "conll"),
        ("tiny.data", "EU NNP B-ORG\nsays VBZ O\n\nOK UH O\n", "conll"),
        ("tiny.data", "EU rejects German call\nPeter said so .\n", "tokens"),
        ("tiny.data", "EU B-ORG\nsays O\n", "tokens"),  # one block, no blank line: ambiguous, read as text
    ],
)
def test_auto_detection(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path / name, text)
    assert read_corpus(path) == read_corpus(path, expected)  # type: ignore[arg-type]


# --- malformed files ---------------------------------------------------------------


def assert_error_at(path: Path, line: int, message: str, read: object = read_corpus) -> None:
    with pytest.raises(DataFormatError, match=message) as caught:
        read(path)  # type: ignore[operator]
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert caught.value.line == line


def test_conllu_line_with_9_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conllu", CONLLU.replace("advmod\t_\t_", "advmod\t_"))
    assert_error_at(path, 5, r"a word line has 10 tab-separated columns \(ID FORM ... MISC\), this one 9")


def test_conllu_non_consecutive_id(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conllu", CONLLU.replace("4\t.\t.", "5\t.\t."))
    assert_error_at(path, 8, r"word ID 5 where 4 was expected \(IDs count 1, 2, 3 ...\)")


def test_conllu_missing_blank_line_between_sentences(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conllu", CONLLU + CONLLU.replace("# sent_id = 1\n", ""))
    assert_error_at(path, 11, "word ID 1 where 5 was expected .* is a blank line missing between sentences")


def test_conllu_non_integer_id_and_missing_tag(tmp_path: Path) -> None:
    assert_error_at(write(tmp_path / "a.conllu", CONLLU.replace("3\tgo", "x\tgo")), 6, "ID 'x' is not a word number")
    path = write(tmp_path / "b.conllu", CONLLU.replace("PART\tRB", "_\tRB"))
    assert_error_at(path, 5, "expected a UPOS tag in column 4, found '_'")


@pytest.mark.parametrize("form", ["", " "])
def test_conllu_empty_word_form(tmp_path: Path, form: str) -> None:
    path = write(tmp_path / "bad.conllu", CONLLU.replace("2\tn't\t", f"2\t{form}\t"))
    assert_error_at(path, 5, r"FORM \(column 2\) is empty")


def test_conllu_lines_end_at_lf_crlf_or_cr_and_read_the_same(tmp_path: Path) -> None:
    expected = read_conllu(write(tmp_path / "lf.conllu", CONLLU))
    for name, newline in [("crlf", "\r\n"), ("cr", "\r")]:
        assert read_conllu(write(tmp_path / f"{name}.conllu", CONLLU, newline=newline, bom=True)) == expected
    mixed = CONLLU.replace("\n", "\r\n", 3)
    assert read_conllu(write(tmp_path / "mixed.conllu", mixed)) == expected


def test_conllu_file_without_words_reads_as_no_sentences(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.conllu", "# newdoc id = x\n\n")
    assert read_conllu(path) == []
    with pytest.raises(DataFormatError, match=r"empty\.conllu: no sentences found \(read as conllu\)"):
        read_corpus(path)


def test_column_file_line_missing_its_tag(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conll", "EU\tB-ORG\nrejects\n\n")
    assert_error_at(path, 2, "expected 2 columns as on line 1, found 1", read_columns)


def test_column_file_with_only_one_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conll", "\nEU\nrejects\n")
    assert_error_at(path, 2, "expected at least 2 columns .* found 1", read_columns)


def test_column_file_mixed_column_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conll", "EU NNP B-ORG\nrejects VBZ O\n\nGerman B-MISC\n")
    assert_error_at(path, 4, "expected 3 columns as on line 1, found 2", read_columns)


def test_column_index_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path / "x.conll", "EU\tB-ORG\n")
    message = "x.conll:1: expected at least 5 columns for token_column=0 and tag_column=4, found 2"
    with pytest.raises(DataFormatError, match=re.escape(message)):
        read_columns(path, tag_column=4)


def test_invalid_utf8_names_line_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conll"
    path.write_bytes("EU\tB-ORG\nZürich\tB-LOC\n".encode("latin-1"))
    assert_error_at(path, 2, r"not valid UTF-8 \(byte 0xfc at byte offset 10\)")


def test_empty_file_has_no_sentences(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.conll", "\n\ufeff\n")
    with pytest.raises(DataFormatError, match=r"empty\.conll: no sentences found"):
        read_corpus(path)


def test_unknown_format_and_tag_field_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "x.conll", "EU\tB-ORG\n")
    with pytest.raises(ValueError, match="fmt must be one of"):
        read_corpus(path, "csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tag_field must be 'upos' or 'xpos'"):
        read_conllu(path, "deprel")  # type: ignore[arg-type]


def test_sentence_needs_one_tag_per_token() -> None:
    with pytest.raises(ValueError, match="expected 2 tags"):
        Sentence(("a", "b"), ("O",))


# --- UNER IOB2 and comment lines ------------------------------------------------------

UNER = """\
# newdoc id = answers-0001
# sent_id = answers-0001-0001
# text = What is this Miramar?
1\tWhat\tO\t-\t-
2\tis\tO\t-\t-
3\tthis\tO
4\tMiramar\tB-LOC\t-\tstephen
5\t?\tO\t-\t-

# sent_id = answers-0001-0002
# text = It is in #Argentina = lol
1\tIt\tO\t-\t-
2\tis\tO\t-\t-
3\tin\tO\t-\t-
4\t#Argentina\tB-LOC\t-\t-
5\t=\tO\t-\t-
6\tlol\tO\t-\t-
"""


def test_uner_iob2_is_detected_and_read_without_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "en_ewt-ud-test.iob2", UNER)
    assert read_corpus(path) == [
        Sentence(("What", "is", "this", "Miramar", "?"), ("O", "O", "O", "B-LOC", "O")),
        Sentence(("It", "is", "in", "#Argentina", "=", "lol"), ("O", "O", "O", "B-LOC", "O", "O")),
    ]
    assert read_corpus(path, "uner") == read_corpus(path)
    # the columns the users passed by hand read the same sentences
    assert read_corpus(path, token_column=1, tag_column=2) == read_corpus(path)


def test_comment_lines_are_skipped_wherever_they_stand_but_a_hash_token_is_kept(tmp_path: Path) -> None:
    text = "# newdoc\nEU\tB-ORG\n# text = a comment inside\n#\tO\n#hashtag\tO\n#rock=life\tO\n\n# sent_id = 2\nok\tO\n"
    path = write(tmp_path / "x.conll", text)
    assert read_columns(path) == [
        Sentence(("EU", "#", "#hashtag", "#rock=life"), ("B-ORG", "O", "O", "O")),
        Sentence(("ok",), ("O",)),
    ]
    spaced = write(tmp_path / "y.conll", "# newdoc id = 3\nEU NNP B-ORG\n# O O\n\n# text = x y\nok UH O\n")
    assert read_columns(spaced) == [Sentence(("EU", "#"), ("B-ORG", "O")), Sentence(("ok",), ("UH", "O")[1:])]


def test_uner_missing_blank_line_and_missing_tag_are_reported_at_their_line(tmp_path: Path) -> None:
    joined = write(tmp_path / "a.iob2", UNER.replace("\n\n# sent_id", "\n# sent_id"))
    assert_error_at(joined, 11, "expected token index 6 in column 1, found '1'")
    untagged = write(tmp_path / "b.iob2", UNER.replace("2\tis\tO\t-\t-\n", "2\tis\n", 1))
    assert_error_at(untagged, 5, r"expected at least 3 columns \(index, token, tag\), found 2")


@reads_corpus
@needs_data
@pytest.mark.parametrize(
    ("name", "sentences", "tokens", "mentions"),
    [
        ("en_ewt-ud-train.iob2", 12543, 204579, 7005),
        ("en_ewt-ud-dev.iob2", 2001, 25149, 966),
        ("en_ewt-ud-test.iob2", 2077, 25097, 1088),
    ],
)
def test_uner_english_ewt_counts(name: str, sentences: int, tokens: int, mentions: int) -> None:
    corpus = read_corpus(DATA / "uner-english-ewt" / name)
    assert len(corpus) == sentences
    assert sum(len(s.tokens) for s in corpus) == tokens
    assert sum(t.startswith("B-") for s in corpus for t in s.tags) == mentions
    assert {t for s in corpus for t in s.tags} == {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}


def test_a_tab_file_indexed_from_1_keeps_the_columns_its_reader_chose(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv", "1\tThe\tDT\tO\n2\tcat\tNN\tO\n\n1\tParis\tNNP\tB-LOC\n")
    assert read_corpus(path)[1].tags == ("NNP",)  # sniffed as UNER-like: token 1, tag 2
    assert read_corpus(path, token_column=1, tag_column=3)[1].tags == ("B-LOC",)  # the columns asked for win
    not_counting = write(tmp_path / "y.tsv", "1\tThe\tO\n7\tcat\tO\n")  # the first column is no index
    assert read_corpus(not_counting) == read_corpus(not_counting, "conll")
