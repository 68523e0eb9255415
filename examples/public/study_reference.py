#!/usr/bin/env python3
"""Reference answers for zkcohort's study templates (issue #13), computed with scipy and
statsmodels from the two vendored public datasets, written to study-reference.json.

    python3 -m venv /tmp/sci && /tmp/sci/bin/pip install scipy statsmodels
    /tmp/sci/bin/python examples/public/study_reference.py   # rewrites study-reference.json

`cargo test -p zkcohort --test study` recomputes every number from the same CSV files through
zkcohort's import (schema, encoding, missing values) and its study templates (`zkcohort::study`),
and requires agreement to 1e-9 relative. The JSON is committed so that the test needs no Python.

Semantics: an empty cell is missing (NaN); a statistic skips missing values (each arm's n is its
non-missing count); a row whose arm is missing belongs to no arm. Standard deviations are the
sample sd (ddof = 1), the one Welch's test uses. Every test is two-sided at 95%.
"""
import csv
import json
import math
import os

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import confint_proportions_2indep

HERE = os.path.dirname(os.path.abspath(__file__))


def read(path):
    with open(os.path.join(HERE, path), newline="") as f:
        return list(csv.DictReader(f))


def num(cell):
    return float(cell) if cell.strip() else math.nan


def values(rows, arm_col, arm, col):
    xs = [num(r[col]) for r in rows if r[arm_col] == arm]
    return np.array([x for x in xs if not math.isnan(x)])


def welch(x, y):
    t = stats.ttest_ind(x, y, equal_var=False)
    ci = t.confidence_interval(0.95)
    v1, v2 = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    return {
        "n": [len(x), len(y)],
        "mean": [x.mean(), y.mean()],
        "sd": [x.std(ddof=1), y.std(ddof=1)],
        "difference": x.mean() - y.mean(),
        "se": math.sqrt(v1 + v2),
        "df": t.df,
        "t": t.statistic,
        "p": t.pvalue,
        "ci": [ci.low, ci.high],
    }


def two_by_two(rows, arm_col, arms, event):
    """Rows: the two arms; columns: event, no event."""
    table = []
    for arm in arms:
        members = [r for r in rows if r[arm_col] == arm]
        a = sum(1 for r in members if event(r))
        table.append([a, len(members) - a])
    t = np.array(table)
    (a, b), (c, d) = table
    pearson = stats.chi2_contingency(t, correction=False)
    yates = stats.chi2_contingency(t, correction=True)
    t22 = Table2x2(t)
    rd_ci = confint_proportions_2indep(a, a + b, c, c + d, method="wald", compare="diff")
    return {
        "table": table,
        "risk_difference": a / (a + b) - c / (c + d),
        "risk_difference_ci": list(rd_ci),
        "risk_ratio": t22.riskratio,
        "risk_ratio_ci": list(t22.riskratio_confint(0.05)),
        "odds_ratio": t22.oddsratio,
        "odds_ratio_ci": list(t22.oddsratio_confint(0.05)),
        "chi2": pearson.statistic,
        "chi2_p": pearson.pvalue,
        "chi2_yates": yates.statistic,
        "chi2_yates_p": yates.pvalue,
    }


def pearson(rows, xcol, ycol):
    pairs = [(num(r[xcol]), num(r[ycol])) for r in rows]
    pairs = [(x, y) for x, y in pairs if not (math.isnan(x) or math.isnan(y))]
    x, y = np.array(pairs).T
    res = stats.pearsonr(x, y)
    ci = res.confidence_interval(0.95)
    return {"n": len(pairs), "r": res.statistic, "p": res.pvalue, "ci": [ci.low, ci.high]}


def fixed_effect(rows, arm_col, arms, col, site_col):
    sites = sorted({r[site_col] for r in rows if r[site_col].strip()}, key=float)
    effects, variances = [], []
    for s in sites:
        here = [r for r in rows if r[site_col] == s]
        x, y = (values(here, arm_col, a, col) for a in arms)
        effects.append(x.mean() - y.mean())
        variances.append(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    res = combine_effects(np.array(effects), np.array(variances), method_re="chi2", use_t=False)
    frame = res.summary_frame()
    fe = frame.loc["fixed effect"]
    z = fe["eff"] / fe["sd_eff"]
    return {
        "sites": sites,
        "effects": effects,
        "variances": variances,
        "effect": fe["eff"],
        "se": fe["sd_eff"],
        "ci": [fe["ci_low"], fe["ci_upp"]],
        "z": z,
        "p": 2 * stats.norm.sf(abs(z)),
        "q": res.q,
        "i2": res.i2,
    }


def main():
    pbc = read("pbc/pbc.csv")
    lung = read("ncctg-lung/lung.csv")
    pbc_cols = ["age_days", "bili", "albumin", "chol", "copper", "ast", "trig", "platelet",
                "protime", "time"]
    lung_cols = ["age", "wt.loss", "meal.cal", "ph.karno"]
    out = {
        "generated_by": "examples/public/study_reference.py",
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__,
        "welch": {
            **{f"pbc/trt/{c}": welch(*(values(pbc, "trt", a, c) for a in ("1", "2")))
               for c in pbc_cols},
            **{f"ncctg-lung/sex/{c}": welch(*(values(lung, "sex", a, c) for a in ("1", "2")))
               for c in lung_cols},
        },
        "two_by_two": {
            "pbc/trt/status=2": two_by_two(pbc, "trt", ("1", "2"), lambda r: r["status"] == "2"),
            "pbc/trt/sex=f": two_by_two(pbc, "trt", ("1", "2"), lambda r: r["sex"] == "f"),
            "pbc/trt/hepato=1": two_by_two(pbc, "trt", ("1", "2"), lambda r: r["hepato"] == "1"),
            "ncctg-lung/sex/status=2": two_by_two(lung, "sex", ("1", "2"),
                                                  lambda r: r["status"] == "2"),
        },
        "pearson": {
            "pbc/bili~albumin": pearson(pbc, "bili", "albumin"),
            "pbc/chol~trig": pearson(pbc, "chol", "trig"),
            "ncctg-lung/age~meal.cal": pearson(lung, "age", "meal.cal"),
        },
        "fixed_effect": {
            "pbc/trt/bili/stage": fixed_effect(pbc, "trt", ("1", "2"), "bili", "stage"),
            "pbc/trt/albumin/stage": fixed_effect(pbc, "trt", ("1", "2"), "albumin", "stage"),
        },
    }
    path = os.path.join(HERE, "study-reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=float)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
