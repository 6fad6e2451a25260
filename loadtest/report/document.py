"""The report's building blocks, shared by the report (``loadtest/report/__init__.py``) and the
verdict (``loadtest/report/verdict.py``): a section and a markdown table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Section", "md_table"]


@dataclass
class Section:
    """One comparison of the report: its charts (names without extension), the table behind them
    (formatted strings), and findings (sentences computed from the numbers)."""

    key: str
    title: str
    intro: str
    charts: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    findings: list[str] = field(default_factory=list)


def md_table(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured markdown table (cells ``str``-ed, ``|`` escaped)."""
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])
