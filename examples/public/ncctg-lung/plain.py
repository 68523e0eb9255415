#!/usr/bin/env python3
"""The plain answer to a zkcohort query over lung.csv: what pandas would give, with the
standard library only.

    python3 plain.py query-calories-men.json [more queries...]

Semantics (pandas-style): an empty cell is NaN; a criterion never matches NaN (every
comparison with NaN is false); the statistic is taken over the matching rows. zkcohort's
circuits require a criterion on a nullable statistic, which already drops its NaN rows, so
the mean here equals pandas' `mean()` (skipna) over the matching rows. The sd is the
population sd (ddof=0), the one zkcohort releases (pandas' `std()` defaults to ddof=1).

Criterion forms: [lo, hi], {"min": lo}, {"max": hi}, {"eq": value}; bounds inclusive.
"""
import csv
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def number(cell):
    return float(cell) if cell.strip() else math.nan


def matches(cell, criterion):
    if isinstance(criterion, dict) and "eq" in criterion:
        return cell.strip() != "" and cell.strip() == str(criterion["eq"])
    x = number(cell)
    if isinstance(criterion, list):
        lo, hi = float(criterion[0]), float(criterion[1])
    else:
        lo = float(criterion.get("min", -math.inf))
        hi = float(criterion.get("max", math.inf))
    return lo <= x <= hi  # False for NaN


def answer(query, rows):
    values = []
    for row in rows:
        if query["consent"] not in row["consent"].replace(";", "|").split("|"):
            continue
        if all(matches(row[col], c) for col, c in query.get("criteria", {}).items()):
            values.append(number(row[query["statistic"]]))
    present = [v for v in values if not math.isnan(v)]
    n = len(values)
    mean = sum(present) / len(present) if present else math.nan
    sd = (
        math.sqrt(sum((v - mean) ** 2 for v in present) / len(present))
        if present
        else math.nan
    )
    return n, len(values) - len(present), mean, sd


def main(paths):
    with open(os.path.join(HERE, "lung.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    for path in paths:
        with open(path) as f:
            query = json.load(f)
        n, skipped, mean, sd = answer(query, rows)
        small = 0 < n < query.get("min_cohort", 11)
        print(
            f"{os.path.basename(path)}: n {n}"
            + (" (suppressed: below min_cohort)" if small else "")
            + f", mean {query['statistic']} {mean:.4f}, sd {sd:.4f}"
            + (f" ({skipped} NaN skipped)" if skipped else "")
        )


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(
        os.path.join(HERE, p) for p in os.listdir(HERE) if p.startswith("query-")
    ))
