"""Atomic writers for tables (CSV, Markdown, LaTeX, raw CSV) and figures (PDF, PNG).

Snakemake, or a reader, must never see a half-written report file, so everything goes through
:mod:`heterofl.io`'s temp-file-and-rename.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from heterofl.io import atomic_path, write_csv, write_text

TABLE_EXTENSIONS = ("csv", "md", "tex")
FIGURE_EXTENSIONS = ("pdf", "png")
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(table: pd.DataFrame, caption: str, label: str) -> str:
    text = table.to_latex(index=False, escape=True, caption=latex_escape(caption), label=label)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("≈", r"$\approx$")


def _sections(table: pd.DataFrame, group: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    if group is None:
        return [(None, table)]
    return [(str(key), part.drop(columns=[group])) for key, part in table.groupby(group, sort=False)]


def write_table(
    folder: Path,
    stem: str,
    table: pd.DataFrame,
    raw: pd.DataFrame,
    caption: str,
    group: str | None = None,
    notes: tuple[str, ...] = (),
) -> list[Path]:
    """``{stem}.csv/.md/.tex`` (formatted) and ``{stem}_raw.csv`` (numbers); ``group`` splits md/tex sections;
    ``notes`` (the runs left out, :func:`notes_markdown`) go under the Markdown and LaTeX tables."""
    paths = {ext: folder / f"{stem}.{ext}" for ext in TABLE_EXTENSIONS}
    raw_path = folder / f"{stem}_raw.csv"
    write_csv(paths["csv"], table)
    write_csv(raw_path, raw)
    markdown, latex = [f"{caption}\n"], []
    for key, part in _sections(table, group):
        title = caption if key is None else f"{caption} ({key})"
        if key is not None:
            markdown.append(f"## {key}\n")
        markdown.append(part.to_markdown(index=False, disable_numparse=True) + "\n")
        label = f"tab:{stem}" if key is None else f"tab:{stem}:{key}"
        latex.append(_latex(part, title, label))
    write_text(paths["md"], "\n".join(markdown) + notes_markdown(notes))
    write_text(paths["tex"], "\n".join(latex) + notes_latex(notes))
    return [paths["csv"], paths["md"], paths["tex"], raw_path]


_HTML_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border-bottom:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
)
_BOLD_MARKDOWN = re.compile(r"\*\*(.+?)\*\*")


def table_html(
    stem: str, table: pd.DataFrame, caption: str, group: str | None = None, notes: tuple[str, ...] = ()
) -> str:
    """A standalone HTML page of a formatted table (what ``snakemake --report`` shows): caption, one section per
    ``group`` value as in the Markdown, the notes below; ``**best**`` cells of method tables in bold."""
    body = [f"<h2>{html.escape(stem)}</h2>", f"<p>{html.escape(caption)}</p>"]
    for key, part in _sections(table, group):
        if key is not None:
            body.append(f"<h3>{html.escape(key)}</h3>")
        body.append(_BOLD_MARKDOWN.sub(r"<b>\1</b>", part.to_html(index=False, border=0, na_rep="-")))
    body += [f"<p><em>{html.escape(note)}</em></p>" for note in notes]
    head = f'<meta charset="utf-8"><title>{html.escape(stem)}</title><style>{_HTML_STYLE}</style>'
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n" + "\n".join(body) + "\n</body></html>\n"


def write_table_html(folder: Path, stem: str, table: pd.DataFrame, caption: str, group=None, notes=()) -> Path:
    """``{stem}.html``: :func:`table_html`, written atomically."""
    path = folder / f"{stem}.html"
    write_text(path, table_html(stem, table, caption, group, notes))
    return path


def notes_markdown(notes: tuple[str, ...]) -> str:
    """Footnote lines under a Markdown table ("" without notes)."""
    return "".join(f"\n{note}\n" for note in notes)


def notes_latex(notes: tuple[str, ...]) -> str:
    """Footnote paragraphs after the LaTeX tables ("" without notes)."""
    return "".join(f"\n\\noindent\\emph{{{latex_escape(note)}}}\n" for note in notes)


def save_figure(fig, folder: Path, stem: str) -> list[Path]:
    """``{stem}.pdf`` and ``{stem}.png``, each rendered to a temp file in ``folder`` and renamed over."""
    written = []
    for ext in FIGURE_EXTENSIONS:
        path = folder / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight")
        written.append(path)
    return written
