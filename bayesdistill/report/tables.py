"""Plain-text tables (no numerical stack: the command line prints them at once)."""

from __future__ import annotations


def text_table(headers, rows, align=None) -> str:
    """A plain-text table with aligned columns.

    Parameters
    ----------
    headers : list of str
    rows : list of list
    align : str, optional
        One character per column, ``"l"`` or ``"r"`` (default: first column
        left, the others right).

    Returns
    -------
    str
    """
    align = align or "l" + "r" * (len(headers) - 1)
    table = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()

    return "\n".join([line(table[0]), "  ".join("-" * w for w in widths), *(line(r) for r in table[1:])])
