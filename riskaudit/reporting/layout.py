"""Terminal tables that fit the width they are given, without cutting a cell.

A table is described as columns and rows; :func:`fit_tables` lays it out for a console width. Key columns
(e.g. the member) are repeated in every part; the other columns are packed, in order, into as few tables as
fit the width, so at 80 columns a wide table becomes two or three narrower ones instead of cells cut to
``demo…``. Each part gets fixed column widths (:func:`column_widths`) that add up to at most the width, so
rich never crops a line: headers and prose (``wrap=True``) wrap at spaces, numbers stay on one line unless even
one number column beside the key columns is wider than the terminal (then they fold), titles and captions
wrap. Nothing is ever cut, with or without an ellipsis (tests/test_no_crop.py compares every rendered string
with its source at 72–200 columns). ``width=None`` gives one table with every column (``--wide``).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, JustifyMethod, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from riskaudit.numbers import estimate

__all__ = ["CI_SEP", "Cell", "Column", "breakable", "ci_cell", "fit_tables", "table_width"]

CI_SEP = ", "  # between a CI's bounds: the same as the HTML page and the card, so a cell reads the same there


@dataclass(frozen=True)
class Column:
    header: str
    justify: JustifyMethod = "left"
    key: bool = False  # repeated in every part of a split table
    wrap: bool = False  # prose: may wrap at spaces; otherwise the cell stays on one line
    optional: bool = False  # shown only where it fits without another part (always with width=None)


Cell = RenderableType


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell if isinstance(cell, str) else ""


def _width(column: Column, cells: Sequence[Cell]) -> int:
    """The narrowest width a column is laid out at when the terminal allows: its longest cell line (numbers
    never wrap), or for prose its longest word (at least 40 when a cell is that long; a word longer than 30
    folds; a key column: just its longest word, up to 34); and the header's longest word (headers wrap)."""
    texts = [_plain(c) for c in cells]
    longest_word = max((cell_len(w) for t in [*texts, column.header] for w in t.split()), default=1)
    if column.wrap and column.key:  # repeated in every part: as narrow as its words allow
        return min(longest_word, 34)
    if column.wrap:  # a word longer than 30 (a path) folds onto the next line
        return max(min(longest_word, 30), min(40, max((cell_len(t) for t in texts), default=1)))
    return max(longest_word, max((cell_len(line) for t in texts for line in t.splitlines() or [""]), default=1))


def _natural(column: Column, cells: Sequence[Cell]) -> int:
    """The width at which the header and every cell stand on one line."""
    lines = [line for c in cells for line in _plain(c).splitlines() or [""]]
    return max([cell_len(column.header), *(cell_len(line) for line in lines)])


def _shrink(widths: list[int], floors: Sequence[int], excess: int, order: Sequence[int]) -> int:
    """Take up to ``excess`` columns of width from the columns in ``order`` (widest first), none below its
    floor; returns what is still in excess."""
    while excess > 0:
        cands = [i for i in order if widths[i] > floors[i]]
        if not cands:
            break
        i = max(cands, key=lambda j: (widths[j] - floors[j], -j))
        widths[i] -= 1
        excess -= 1
    return excess


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int) -> list[int]:
    """Content widths (without padding) for the columns of a table at most ``width`` wide.

    Each column starts at its :func:`_width`; when those do not fit, prose columns give up room first (down to
    8), then every column (down to 4: its cells fold onto further lines, nothing is cut). Room left over goes
    to the columns that need the fewest extra characters to show their header and cells on one line."""
    cells = [[r[i] for r in rows] for i in range(len(columns))]
    widths = [_width(c, cells[i]) for i, c in enumerate(columns)]
    natural = [max(w, _natural(c, cells[i])) for i, (c, w) in enumerate(zip(columns, widths, strict=True))]
    room = width - 3 * (len(columns) - 1)  # one separator and two padding characters between columns
    excess = sum(widths) - room
    if excess > 0:
        prose = [i for i, c in enumerate(columns) if c.wrap]
        excess = _shrink(widths, [min(widths[i], 8) for i in range(len(columns))], excess, prose)
        excess = _shrink(widths, [min(widths[i], 4) for i in range(len(columns))], excess, range(len(columns)))
    spare = room - sum(widths)
    for i in sorted(range(len(columns)), key=lambda j: (natural[j] - widths[j], j)):
        give = min(spare, natural[i] - widths[i])
        if give > 0:
            widths[i] += give
            spare -= give
    return widths


def _table(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    caption: str | None,
    width: int | None = None,
) -> Table:
    """The rich table. With ``width``: every column gets a fixed width (:func:`column_widths`) and may wrap and
    fold, so the table is never wider than ``width`` and nothing is cut; without: natural widths (``--wide``)."""
    fixed = column_widths(columns, rows, width) if width is not None else None
    # --wide: printed at its natural width, which rich must not take back down to the console's
    floors = [_width(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    t = Table(
        title=Text(title),
        title_justify="left",
        caption=Text(caption) if caption else None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for i, c in enumerate(columns):  # Text, never markup: "pearson[t0]" is data
        if fixed is None:
            t.add_column(Text(c.header), justify=c.justify, no_wrap=not c.wrap, overflow="fold", min_width=floors[i])
        else:
            t.add_column(Text(c.header), justify=c.justify, overflow="fold", width=fixed[i])
    for row in rows:
        t.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))
    return t


def _total_width(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], idx: Sequence[int]) -> int:
    """The narrowest width of a table of the columns ``idx``: their widths plus 3 between two columns
    (padding, separator, padding; no outer edge)."""
    return sum(_width(columns[j], [r[j] for r in rows]) for j in idx) + 3 * (len(idx) - 1)


def _balanced(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    keys: list[int],
    rest: list[int],
    greedy: list[list[int]],
    width: int,
) -> list[list[int]]:
    """The same number of parts as ``greedy``, with the columns spread so that the widest part is as narrow as
    possible (no lone column left over at the end)."""
    k = len(greedy)
    if k < 2 or len(rest) > 16:
        return greedy
    best, best_w = greedy, max(_total_width(columns, rows, sorted([*keys, *p])) for p in greedy)
    for cuts in itertools.combinations(range(1, len(rest)), k - 1):
        bounds = [0, *cuts, len(rest)]
        parts = [rest[a:b] for a, b in itertools.pairwise(bounds)]
        w = max(_total_width(columns, rows, sorted([*keys, *p])) for p in parts)
        if w <= width and w < best_w:
            best, best_w = parts, w
    return best


def table_width(table: Table) -> int:
    """The width a table needs to show every cell without folding (for printing ``--wide`` tables)."""
    console = Console(width=100_000, file=io.StringIO())
    return Measurement.get(console, console.options, table).maximum


def fit_tables(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int | None,
    caption: str | None = None,
) -> list[Table]:
    """One table when it fits ``width`` (or when ``width`` is None), else several, each repeating the key
    columns and holding as many further columns as fit. The caption goes under the last part."""
    if width is None or not columns:
        return [_table(title, columns, rows, caption)]
    keys = [i for i, c in enumerate(columns) if c.key]
    rest = [i for i, c in enumerate(columns) if not c.key and not c.optional]
    parts: list[list[int]] = []
    current: list[int] = []
    for i in rest:
        if current and _total_width(columns, rows, sorted([*keys, *current, i])) > width:
            parts.append(current)
            current = [i]
        else:
            current.append(i)
    if current or not parts:
        parts.append(current)
    parts = _balanced(columns, rows, keys, rest, parts, width)
    for i in (i for i, c in enumerate(columns) if c.optional and not c.key):
        if _total_width(columns, rows, sorted([*keys, *parts[-1], i])) <= width:
            parts[-1].append(i)
    tables = []
    for n, part in enumerate(parts, start=1):
        idx = sorted([*keys, *part])
        name = title if len(parts) == 1 else f"{title} ({n}/{len(parts)})"
        cap = caption if n == len(parts) else None
        tables.append(_table(name, [columns[j] for j in idx], [[r[j] for j in idx] for r in rows], cap, width=width))
    return tables


def breakable(name: str) -> str:
    """A metric name that may wrap before its breakdown key: ``pearson [late_because]``."""
    return name.replace("[", " [")


def ci_cell(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    """A value and its 95% CI in one cell, in the one number format the HTML page and the model card share
    (:func:`riskaudit.numbers.estimate`: ``0.410 [0.341, 0.486]``; ``–`` when undefined); ``signed`` for
    growths and differences (``+3.56e-5 [+1.20e-5, +6.01e-5]``)."""
    return estimate(value, low, high, signed=signed, sep=CI_SEP)
