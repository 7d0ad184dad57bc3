"""``llmpath tokenize``: every format and input route, on the tiny tokenizers."""

from __future__ import annotations

import json

import pytest

from llmcli.models.convert import bytes_to_unicode

EOT = "<|endoftext|>"
KEYS = ["index", "id", "token", "text", "start", "end", "bytes", "special"]
TEXT = "It's a blue sundress. 日本語 🙂"
LINES = ["The cat sat on the mat.", "", "naïve café 日本語", "  two  spaces\r"]


def ids(ref, text: str) -> list[int]:
    return ref.encode(text, add_special_tokens=False).ids


def test_jsonl_is_the_default_in_a_pipe(cli, bpe_dir, bpe_ref):
    result = cli("tokenize", TEXT, "-m", bpe_dir)
    assert result.code == 0 and result.err == ""
    records = result.jsonl()
    assert all(list(r) == KEYS for r in records)
    assert [r["id"] for r in records] == ids(bpe_ref, TEXT)
    assert [r["token"] for r in records] == bpe_ref.encode(TEXT, add_special_tokens=False).tokens
    assert [r["index"] for r in records] == list(range(len(records)))
    assert b"".join(bytes.fromhex(r["bytes"]) for r in records) == TEXT.encode()
    partial = [r for r in records if "\\x" in r["text"]]
    assert partial and not any("\ufffd" in r["text"] for r in records)


def test_table(cli, bpe_dir, bpe_ref):
    result = cli("tokenize", "The cat sat.", "-m", bpe_dir, "-f", "table")
    assert result.code == 0
    expected = ids(bpe_ref, "The cat sat.")
    assert f"{len(expected)} tokens from 12 characters (12 bytes)" in result.out
    for token_id in expected:
        assert f" {token_id} " in result.out
    assert "tinybpe" in result.out
    assert "Ġcat" in result.out


def test_json(cli, bpe_dir, bpe_ref):
    result = cli("tokenize", TEXT, "-m", bpe_dir, "-f", "json")
    data = json.loads(result.out)
    assert data["model"] == "tinybpe"
    assert data["vocab_size"] == bpe_ref.get_vocab_size()
    assert [t["id"] for t in data["tokens"]] == ids(bpe_ref, TEXT)
    assert data["count"] == len(data["tokens"])
    assert (data["characters"], data["bytes"]) == (len(TEXT), len(TEXT.encode()))


def test_tsv(cli, bpe_dir, bpe_ref):
    text = "a cat\n\tthe mat"
    result = cli("tokenize", text, "-m", bpe_dir, "-f", "tsv")
    lines = result.out.splitlines()
    assert lines[0].split("\t") == KEYS
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == len(KEYS) for row in rows)
    assert [int(row[1]) for row in rows] == ids(bpe_ref, text)
    texts = "".join(row[3] for row in rows)
    assert texts == "a cat\\n\\tthe mat"
    assert {row[7] for row in rows} == {"false"}


def test_ids_one_line_per_input_line(cli, bpe_dir, bpe_ref, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8", newline="")
    result = cli("tokenize", "--file", path, "-m", bpe_dir, "-f", "ids")
    assert result.code == 0
    assert result.out.split("\n")[:-1] == [" ".join(map(str, ids(bpe_ref, line))) for line in LINES]


def test_bos_and_eos_add_the_config_tokens(cli, bpe_dir, bpe_ref):
    eot = bpe_ref.token_to_id(EOT)
    records = cli("tokenize", "The cat", "-m", bpe_dir, "--bos", "--eos").jsonl()
    assert [r["id"] for r in records] == [eot, *ids(bpe_ref, "The cat"), eot]
    assert [r["special"] for r in records] == [True, False, False, True]
    # GPT-2's own template adds nothing: --special (the default) leaves the text as it is.
    for flag in ("--special", "--no-special"):
        plain = cli("tokenize", "The cat", "-m", bpe_dir, flag).jsonl()
        assert [r["id"] for r in plain] == ids(bpe_ref, "The cat")
    only_bos = cli("tokenize", "The cat", "-m", bpe_dir, "--bos").jsonl()
    assert [r["id"] for r in only_bos] == [eot, *ids(bpe_ref, "The cat")]
    lines = cli("tokenize", "a cat\nthe mat", "-m", bpe_dir, "--bos", "--eos", "-f", "ids").out
    assert lines.splitlines() == [
        " ".join(map(str, [eot, *ids(bpe_ref, line), eot])) for line in ("a cat", "the mat")
    ]


def test_the_template_is_the_default(cli, bert_tokenizer_dir, wordpiece_ref):
    text = "The kitten sat."
    plain = wordpiece_ref.encode(text, add_special_tokens=False).tokens
    records = cli("tokenize", text, "-m", bert_tokenizer_dir).jsonl()
    assert [r["token"] for r in records] == ["[CLS]", *plain, "[SEP]"]
    assert [r["special"] for r in records] == [True] + [False] * len(plain) + [True]
    assert (records[-1]["start"], records[-1]["end"]) == (len(text), len(text))
    table = cli("tokenize", text, "-m", bert_tokenizer_dir, "-f", "table").out
    assert "special tokens: [CLS] … [SEP] by tinybert's own template" in " ".join(table.split())
    # --bos/--eos never add a second [CLS] or [SEP].
    both = cli("tokenize", text, "-m", bert_tokenizer_dir, "--bos", "--eos").jsonl()
    assert [r["token"] for r in both] == ["[CLS]", *plain, "[SEP]"]
    off = cli("tokenize", text, "-m", bert_tokenizer_dir, "--no-special", "-f", "table").out
    assert "none (--no-special leaves out tinybert's [CLS] … [SEP])" in " ".join(off.split())
    # -f ids: each line inside the template, as the tokenizer itself does it.
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(bert_tokenizer_dir / "tokenizer.json"))
    lines = cli("tokenize", "a cat\nthe mat", "-m", bert_tokenizer_dir, "-f", "ids").out
    assert lines.splitlines() == [
        " ".join(map(str, ref.encode(line).ids)) for line in ("a cat", "the mat")
    ]


def test_several_models_side_by_side(cli, bpe_dir, wordpiece_dir, bpe_ref, wordpiece_ref):
    text = "The kitten sat."
    result = cli("tokenize", text, "-m", bpe_dir, "-m", wordpiece_dir)
    assert result.code == 0
    records = result.jsonl()
    assert all(list(r) == ["model", *KEYS] for r in records)
    by_model = {m: [r["id"] for r in records if r["model"] == m] for m in ("tinybpe", "tinywp")}
    assert by_model == {"tinybpe": ids(bpe_ref, text), "tinywp": ids(wordpiece_ref, text)}

    data = json.loads(cli("tokenize", text, "-m", bpe_dir, "-m", wordpiece_dir, "-f", "json").out)
    assert [(d["model"], d["count"]) for d in data] == [
        ("tinybpe", len(ids(bpe_ref, text))), ("tinywp", len(ids(wordpiece_ref, text))),
    ]  # fmt: skip

    tsv = cli("tokenize", text, "-m", bpe_dir, "-m", wordpiece_dir, "-f", "tsv").out.splitlines()
    assert tsv[0].split("\t") == ["model", *KEYS]
    assert len(tsv) == 1 + len(records)

    table = cli("tokenize", text, "-m", bpe_dir, "-m", wordpiece_dir, "-f", "table")
    assert table.code == 0
    assert "tinybpe" in table.out and "tinywp" in table.out
    assert " ".join(map(str, ids(wordpiece_ref, text))) in table.out


def test_stdin_dash_and_file_dash(cli, bpe_dir, bpe_ref):
    data = "Hello world!\nSecond line here.\n"
    for args in (["-"], ["--file", "-"], []):
        result = cli("tokenize", *args, "-m", bpe_dir, stdin=data.encode())
        assert result.code == 0, result.err
        assert [r["id"] for r in result.jsonl()] == ids(bpe_ref, data)


def test_stdin_through_a_real_pipe(run_llmpath, bpe_dir, bpe_ref):
    data = "naïve café\n日本語\n"
    result = run_llmpath("tokenize", "-m", bpe_dir, "-f", "ids", stdin=data.encode())
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        " ".join(map(str, ids(bpe_ref, x))) for x in data.splitlines()
    ]


def test_output_file_is_written_and_stdout_stays_empty(cli, bpe_dir, bpe_ref, tmp_path):
    out = tmp_path / "tokens.tsv"
    result = cli("tokenize", TEXT, "-m", bpe_dir, "-o", out)
    assert result.code == 0 and result.out == ""
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == KEYS  # the format follows the suffix
    assert [int(r.split("\t")[1]) for r in rows[1:]] == ids(bpe_ref, TEXT)
    other = tmp_path / "tokens.out"
    cli("tokenize", TEXT, "-m", bpe_dir, "-o", other)
    assert [json.loads(x)["id"] for x in other.read_text().splitlines()] == ids(bpe_ref, TEXT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.out", "tokens.tsv"]


def test_a_failed_run_leaves_the_output_file_untouched(cli, bpe_dir, tmp_path, one_error):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text\n\xff more")
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    one_error(cli("tokenize", "--file", bad, "-m", bpe_dir, "-o", out), 1, "byte offset 10")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "out.jsonl"]


# --- decoding ------------------------------------------------------------------------------


def test_decode_ids_given_as_arguments(cli, bpe_dir, bpe_ref):
    token_ids = ids(bpe_ref, TEXT)
    result = cli("tokenize", "--decode", "-m", bpe_dir, *map(str, token_ids))
    assert result.code == 0 and result.out == TEXT + "\n"
    joined = cli("tokenize", "-d", "-m", bpe_dir, ",".join(map(str, token_ids)))
    assert joined.out == TEXT + "\n"
    as_json = cli("tokenize", "-d", "-m", bpe_dir, "-f", "json", *map(str, token_ids))
    assert json.loads(as_json.out) == [{"text": TEXT}]


def test_decode_a_partial_character_shows_escapes(cli, bpe_dir, bpe_ref):
    token_ids = ids(bpe_ref, "語")
    assert len(token_ids) > 1
    first = bpe_ref.id_to_token(token_ids[0])
    result = cli("tokenize", "--decode", "-m", bpe_dir, str(token_ids[0]))
    byte_map = {c: b for b, c in bytes_to_unicode().items()}
    expected = bytes(byte_map[c] for c in first).decode("utf-8", "backslashreplace")
    assert result.out == expected + "\n"
    assert "\\x" in result.out and "\ufffd" not in result.out


def test_ids_lines_decode_back_to_every_line(cli, bpe_dir, tmp_path):
    path = tmp_path / "in.txt"
    text = "\n".join(LINES) + "\n"
    path.write_text(text, encoding="utf-8", newline="")
    id_lines = cli("tokenize", "--file", path, "-m", bpe_dir, "-f", "ids").out
    decoded = cli("tokenize", "--decode", "-m", bpe_dir, stdin=id_lines.encode())
    assert decoded.code == 0, decoded.err
    assert decoded.out == text


def test_records_decode_back_to_the_exact_text(cli, bpe_dir):
    text = "It's 日本語 🙂\nnaïve  café\r\n"
    records = cli("tokenize", text, "-m", bpe_dir, "-f", "jsonl").out
    decoded = cli("tokenize", "--decode", "-m", bpe_dir, stdin=records.encode())
    assert decoded.out == text + "\n"
    two_runs = records + cli("tokenize", "the mat", "-m", bpe_dir).out
    decoded = cli("tokenize", "--decode", "-m", bpe_dir, stdin=two_runs.encode())
    assert decoded.out == text + "\n" + "the mat\n"


def test_decode_takes_one_model_and_text_formats(cli, bpe_dir, wordpiece_dir, one_error):
    one_error(cli("tokenize", "-d", "-m", bpe_dir, "-m", wordpiece_dir, "1"), 2, "one model")
    one_error(cli("tokenize", "-d", "-m", bpe_dir, "-f", "tsv", "1"), 2, "--decode")
    one_error(cli("tokenize", "-m", bpe_dir, "-m", wordpiece_dir, "-f", "ids", "x"), 2, "-f ids")


@pytest.mark.parametrize("fmt", ["table", "jsonl", "json", "tsv", "ids"])
def test_every_format_reads_a_file(cli, bpe_dir, bpe_ref, tmp_path, fmt):
    path = tmp_path / "in.txt"
    path.write_text("The cat sat.\n", encoding="utf-8")
    result = cli("tokenize", "--file", path, "-m", bpe_dir, "-f", fmt)
    assert result.code == 0 and result.err == ""
    expected = ids(bpe_ref, "The cat sat.\n")
    if fmt == "ids":
        assert result.out == " ".join(map(str, ids(bpe_ref, "The cat sat."))) + "\n"
    elif fmt == "jsonl":
        assert [r["id"] for r in result.jsonl()] == expected
    elif fmt == "json":
        assert [t["id"] for t in json.loads(result.out)["tokens"]] == expected
    elif fmt == "tsv":
        assert [int(r.split("\t")[1]) for r in result.out.splitlines()[1:]] == expected
    else:
        assert f"{len(expected)} tokens from 13 characters" in result.out


def test_no_input_on_a_terminal_is_a_usage_error(cli, bpe_dir, monkeypatch, one_error):
    from llmcli.core import inputs

    monkeypatch.setattr(inputs, "stdin_is_tty", lambda: True)
    one_error(cli("tokenize", "-m", bpe_dir), 2, "give TEXT, --file PATH, or pipe text on stdin")
    one_error(cli("tokenize", "-d", "-m", bpe_dir), 2, "give IDs, --file PATH")


def test_decode_ids_from_a_file(cli, bpe_dir, bpe_ref, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text(" ".join(map(str, ids(bpe_ref, TEXT))) + "\n")
    assert cli("tokenize", "--decode", "--file", path, "-m", bpe_dir).out == TEXT + "\n"


def test_output_to_a_fifo_writes_into_it_and_leaves_it_a_fifo(cli, bpe_dir, bpe_ref, tmp_path):
    """-o on a device or pipe (say /dev/null) must write to it, not rename a file over it."""
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = cli("tokenize", "-m", bpe_dir, "-f", "ids", "-o", fifo, "hello world")
    reader.join(timeout=30)
    assert result.code == 0
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received == [(" ".join(map(str, ids(bpe_ref, "hello world"))) + "\n").encode()]
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]
