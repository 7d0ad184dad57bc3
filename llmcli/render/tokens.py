"""How tokens look: a terminal table that shows boundaries and spaces, or text formats."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from llmcli.core.inputs import TextSource
from llmcli.core.tokenize import IdLines, TokenRecord
from llmcli.render.output import console, open_output, write_json, write_jsonl, write_tsv

TSV_FIELDS = ["index", "id", "token", "text", "start", "end", "bytes", "special"]
# Token boundaries are shown by alternating background colours.
PALETTE = ["on #264f78", "on #5a3d7a", "on #2f6b4f", "on #7a5a2a", "on #7a2f3f"]
MAX_TABLE_ROWS = 1000


def visible(text: str) -> str:
    """Make whitespace and control characters visible: ``·`` space, ``↵`` newline."""
    out = []
    for ch in text:
        if ch == " ":
            out.append("·")
        elif ch == "\n":
            out.append("↵")
        elif ch == "\t":
            out.append("→")
        elif ch == "\r":
            out.append("␍")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def is_partial(record: TokenRecord) -> bool:
    """True when the token's bytes are only part of a UTF-8 character."""
    try:
        bytes.fromhex(record.bytes).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def hex_bytes(record: TokenRecord) -> str:
    return " ".join(record.bytes[i : i + 2] for i in range(0, len(record.bytes), 2))


def shown_text(record: TokenRecord) -> str:
    """The token's text, or ``‹e6 97›`` where its bytes are only part of a character."""
    if not record.special and is_partial(record):
        return f"‹{hex_bytes(record)}›"
    return visible(record.text)


def token_label(record: TokenRecord) -> str:
    """How a token is labelled in a page or picture: its text with spaces and newlines
    made visible (``·cat``), or the token itself where that text is empty."""
    return shown_text(record) or record.token


def token_strip(records: Sequence[TokenRecord], text: str | None = None) -> Any:
    """The text cut into tokens, each on its own background colour.

    With the input ``text``, each token shows the characters it covers (so a
    lower-casing tokenizer still shows the text as written, and skipped spaces
    stay visible, dimmed); bytes that are part of a character show as hex.
    """
    from rich.text import Text

    line = Text()
    pos = 0
    for record in records:
        style = "bold reverse" if record.special else PALETTE[record.index % len(PALETTE)]
        in_text = text is not None and not record.special and not is_partial(record)
        if in_text and record.start >= pos and record.end > record.start:
            assert text is not None
            line.append(visible(text[pos : record.start]), style="dim")
            line.append(visible(text[record.start : record.end]), style=style)
            pos = record.end
            continue
        line.append(shown_text(record), style=style)
        pos = max(pos, record.end)
    if text is not None and pos < len(text) and len(records) < MAX_TABLE_ROWS:
        line.append(visible(text[pos:]), style="dim")
    return line


def summary_line(label: str, vocab: int, count: int, chars: int, nbytes: int) -> str:
    per = f", {chars / count:.2f} characters a token" if count else ""
    return (
        f"{count:,} tokens from {chars:,} characters ({nbytes:,} bytes){per} · "
        f"{label}, vocabulary {vocab:,}"
    )


def render_table(
    console: Any, records: Iterable[TokenRecord], *, label: str, vocab: int, source: TextSource,
    lossless: bool = False, added: str = "",
) -> None:  # fmt: skip
    """The tokens as a strip and a table; very long inputs show the first rows only.

    ``added`` says which special tokens were put around the text, and by what.
    ``lossless``: the tokenizer's tokens should hold every byte of the text (byte-level
    BPE); where they do not, a note says how many bytes its vocabulary dropped.
    """
    from rich import box
    from rich.table import Table

    shown: list[TokenRecord] = []
    count = 0
    for record in records:
        if count < MAX_TABLE_ROWS:
            shown.append(record)
        count += 1
    console.print(token_strip(shown, source.text))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("token")
    table.add_column("text")
    table.add_column("ID", justify="right", style="bold cyan")
    table.add_column("chars", justify="right", style="dim")
    table.add_column("bytes", style="dim")
    for record in shown:
        style = PALETTE[record.index % len(PALETTE)]
        tag = "  [magenta](special)[/]" if record.special else ""
        table.add_row(
            str(record.index),
            _escape(visible(record.token)) + tag,
            f"[{style}]{_escape(shown_text(record))}[/]",
            str(record.id),
            f"{record.start}–{record.end}",
            hex_bytes(record),
        )
    console.print(table)
    if count > len(shown):
        console.print(
            f"[yellow]… {count - len(shown):,} more tokens not shown; "
            "use -f jsonl or -f tsv for all of them[/]"
        )
    console.print(summary_line(label, vocab, count, source.chars, source.nbytes))
    if added:
        console.print(f"[dim]{_escape(added)}[/]")
    if lossless and source.text is not None and count == len(shown):
        covered = b"".join(bytes.fromhex(r.bytes) for r in shown if not r.special)
        wanted = source.text.encode("utf-8", "surrogatepass")
        if covered != wanted:
            console.print(
                f"[yellow]note: the tokens hold {len(covered):,} of the text's {len(wanted):,} "
                f"bytes: {label}'s tokenizer drops what its vocabulary has no token for[/]"
            )


def render_comparison(
    console: Any, results: Sequence[tuple[str, int, Sequence[TokenRecord]]], text: str
) -> None:
    """Several tokenizers on the same text: their cuts, counts and IDs."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    table.add_column("model", style="bold")
    table.add_column("vocab", justify="right", style="dim")
    table.add_column("tokens", justify="right", style="bold cyan")
    table.add_column("how the text is cut", overflow="fold", ratio=3)
    table.add_column("IDs", style="dim", overflow="fold", ratio=2)
    for label, vocab, records in results:
        shown = records[:MAX_TABLE_ROWS]
        ids = " ".join(str(r.id) for r in shown)
        table.add_row(label, f"{vocab:,}", str(len(records)), token_strip(shown, text), ids)
    console.print(table)
    console.print(f"{len(text):,} characters, {len(text.encode('utf-8', 'surrogatepass')):,} bytes")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def emit_tokens(
    records: Iterator[TokenRecord], fmt: str, output: Path | None, *,
    label: str, vocab: int, source: TextSource, lossless: bool = False, added: str = "",
) -> None:  # fmt: skip
    """Write one tokenizer's records in ``fmt`` (streamed: constant memory)."""
    with open_output(output) as fh:
        if fmt == "table":
            render_table(console(fh), records, label=label, vocab=vocab, source=source,
                         lossless=lossless, added=added)  # fmt: skip
        elif fmt == "jsonl":
            write_record_lines(fh, records)
        elif fmt == "tsv":
            write_tsv(fh, TSV_FIELDS, (_tsv_row(r) for r in records))
        else:  # json: one object, the token list streamed inside it
            fh.write('{"model": ' + json.dumps(label) + ', "vocab_size": ' + str(vocab))
            fh.write(', "tokens": [')
            count = 0
            for record in records:
                fh.write(
                    ("\n  " if count == 0 else ",\n  ")
                    + json.dumps(record.to_dict(), ensure_ascii=False)
                )
                count += 1
            fh.write(f'\n], "count": {count}, "characters": {source.chars}, ')
            fh.write(f'"bytes": {source.nbytes}}}\n')


def emit_comparison(
    results: Sequence[tuple[str, int, Sequence[TokenRecord]]], fmt: str, output: Path | None,
    text: str,
) -> None:  # fmt: skip
    """Several tokenizers on the same text; records carry a ``model`` field."""
    rows = ({"model": label, **r.to_dict()} for label, _, records in results for r in records)
    with open_output(output) as fh:
        if fmt == "table":
            render_comparison(console(fh), results, text)
        elif fmt == "jsonl":
            write_jsonl(fh, rows)
        elif fmt == "tsv":
            write_tsv(
                fh, ["model", *TSV_FIELDS],
                ([label, *_tsv_row(r)] for label, _, records in results for r in records),
            )  # fmt: skip
        else:
            write_json(fh, [
                {"model": label, "vocab_size": vocab, "count": len(records),
                 "tokens": [r.to_dict() for r in records]}
                for label, vocab, records in results
            ])  # fmt: skip


class _IdWords(dict[int, str]):
    """Each ID's decimal text and a space, made once: a look-up is faster than ``str``."""

    def __missing__(self, token_id: int) -> str:
        word = self[token_id] = f"{token_id} "
        return word


@functools.lru_cache(maxsize=8)
def _id_words(end: int, line_break: str) -> Callable[[int], str]:
    """``_IdWords`` in which the ID ``end`` becomes ``line_break``."""
    return _IdWords({end: line_break}).__getitem__


def emit_id_lines(batches: Iterable[IdLines], output: Path | None) -> None:
    """IDs separated by spaces, one line per input line."""
    with open_output(output) as fh:
        for batch in batches:
            fh.write(id_lines_text(batch))


def id_lines_text(batch: IdLines) -> str:
    """The lines of a batch, each ended by a line break: ``"1026 338\\n64\\n"``.

    A batch whose last line goes on in the next (``closes`` false) ends with a space
    instead, and the next (``opens`` false) goes on from there.
    """
    before = "".join(f"{i} " for i in batch.before)
    after = "".join(f"{i} " for i in batch.after)
    words = _id_words(batch.separator, after + "\n" + before)
    text = (before if batch.opens else "") + "".join(map(words, batch.ids))
    if not batch.closes:
        return text.replace(" \n", "\n")
    # Each ID is written with a space after it: drop the space that ends a line.
    return (text + after).replace(" \n", "\n").removesuffix(" ") + "\n"


def emit_decoded(texts: Iterable[str], fmt: str | None, output: Path | None) -> None:
    """Decoded text: one line per ID sequence, or a JSON list with ``-f json``."""
    with open_output(output) as fh:
        if fmt == "json":
            write_json(fh, [{"text": t} for t in texts])
        else:
            for text in texts:
                fh.write(text + "\n")


def write_record_lines(fh: IO[str], records: Iterable[TokenRecord]) -> None:
    """Token records as JSON Lines; what does not change with position is encoded once per ID.

    Gives the same text as ``json.dumps(record.to_dict(), ensure_ascii=False)``.
    """
    parts: dict[int, tuple[str, str]] = {}
    buf: list[str] = []
    for r in records:
        if r.decoded:  # offsets into a decoded text: written as such
            buf.append(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
            continue
        part = parts.get(r.id)
        if part is None:
            head = json.dumps({"id": r.id, "token": r.token, "text": r.text}, ensure_ascii=False)
            tail = json.dumps({"bytes": r.bytes, "special": r.special})
            part = parts[r.id] = (head[1:-1], tail[1:-1])
        buf.append(
            f'{{"index": {r.index}, {part[0]}, "start": {r.start}, "end": {r.end}, {part[1]}}}\n'
        )
        if len(buf) >= 4096:
            fh.write("".join(buf))
            buf.clear()
    fh.write("".join(buf))


def _tsv_row(r: TokenRecord) -> list[object]:
    start, end = ("", "") if r.decoded else (r.start, r.end)  # no input offsets to give
    return [r.index, r.id, r.token, r.text, start, end, r.bytes, r.special]
