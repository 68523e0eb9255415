#!/usr/bin/env python3
"""Slither over the project's own contracts, gated by a committed triage file.

Run by `make slither` (and `make lint`) with the virtualenv's python, which has the pinned
slither-analyzer. Fails on every High or Medium finding that no entry of slither.triage.json
matches, on triage entries without a reason, and on stale entries (that match nothing). Low,
Informational and Optimization findings are counted only; the full report is written as JSON
(default cache/slither.json).

Why not the `slither` command line: there is no native solc here, only the wasm build behind
tools/solc, which speaks `--standard-json` only; slither's direct mode needs `--combined-json`,
and its foundry mode recompiles everything (verifiers and tests included, one compiler job,
which the wasm solc cannot hold). So this script builds one standard-JSON job of exactly our
sources (contracts/*.sol, interfaces, libraries, base; never the generated verifiers, tests or
scripts), asks solc for the ASTs only (no code generation: quick, small, and no stack-too-deep
without forge's optimizer settings), and hands it to crytic-compile and slither through their
Python API.

Triage file: a JSON object whose "entries" are
  {"detector": "<slither check, e.g. encode-packed-collision>",
   "location": "<Contract> or <Contract>.<function|modifier|variable>",
   "contains": "<optional substring of the finding's description, to pick one of several>",
   "reason": "<why this finding is acceptable: required, non-empty>"}
An entry matches every finding of that detector at that location (and containing the text).
"""

import argparse
import glob
import json
import logging
import os
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The project's own sources. Globs, so that new files are analysed without touching this list.
SOURCES = [
    "contracts/*.sol",
    "contracts/interfaces/**/*.sol",
    "contracts/libraries/**/*.sol",
    "contracts/base/**/*.sol",
]
GATED = ("High", "Medium")


def sources():
    files = set()
    for pattern in SOURCES:
        files.update(glob.glob(pattern, recursive=True))
    return sorted(f for f in files if not f.startswith("contracts/verifiers/"))


def standard_json(files):
    """One solc standard-JSON job: our sources, the forge remappings and EVM version, and only
    the ASTs as output (slither reads nothing else). Without code generation the wasm solc is
    quick and small, and the optimizer settings forge needs (`yul = false`) do not matter."""
    with open("foundry.toml", "rb") as f:
        profile = tomllib.load(f)["profile"]["default"]
    with open("remappings.txt", encoding="utf8") as f:
        remappings = [line.strip() for line in f if line.strip()]
    settings = {
        "remappings": remappings,
        "optimizer": {"enabled": False},
        "outputSelection": {"*": {"": ["ast"], "*": ["abi"]}},
    }
    if "evm_version" in profile:
        settings["evmVersion"] = profile["evm_version"]
    return {
        "language": "Solidity",
        "sources": {f: {"urls": [f]} for f in files},
        "settings": settings,
    }, os.path.abspath(profile.get("solc", "solc"))


def run_slither(files):
    # Imported here so that `--help` and triage-file errors need no virtualenv.
    from crytic_compile import CryticCompile
    from crytic_compile.compilation_unit import CompilationUnit
    from crytic_compile.compiler.compiler import CompilerVersion
    from crytic_compile.platform import solc_standard_json as sj
    from slither import Slither
    from slither.__main__ import get_detectors_and_printers

    job, solc = standard_json(files)

    class AstOnly(sj.SolcStandardJson):
        """crytic-compile's standard-JSON platform, minus code generation (and its optimizer
        rewrite of our settings): crytic-compile expects bytecode fields, left empty here."""

        def compile(self, crytic_compile, **_kwargs):
            unit = CompilationUnit(crytic_compile, "zkcohort")
            unit.compiler_version = CompilerVersion(
                compiler="solc", version=sj.get_version(solc, None), optimized=False
            )
            out = sj.run_solc_standard_json(
                self._json, unit.compiler_version, solc_disable_warnings=True, solc=solc
            )
            empty = {"object": "", "sourceMap": ""}
            for contracts in out.get("contracts", {}).values():
                for info in contracts.values():
                    info["evm"] = {"bytecode": empty, "deployedBytecode": empty}
            sj.parse_standard_json_output(out, unit)

    compilation = CryticCompile(AstOnly(job))
    # Keep findings that touch at least one of our files (a finding inside solady is not ours;
    # one in our code that also points into solady is).
    ours = "^" + ROOT.replace("\\", "/") + "/contracts/(?!verifiers/)"
    slither = Slither(compilation, include_paths=[ours])
    detectors, _ = get_detectors_and_printers()
    for detector in detectors:
        slither.register_detector(detector)
    return [r for results in slither.run_detectors() for r in results if r]


def location(element):
    """`Contract.function` (or `Contract`, `Contract.variable`) of a finding's element."""
    names = []
    while element:
        if element.get("type") != "node" and element.get("name"):
            names.append(element["name"])
        element = element.get("type_specific_fields", {}).get("parent")
    return ".".join(reversed(names))


def where(result):
    for element in result.get("elements", []):
        sm = element.get("source_mapping") or {}
        if sm.get("filename_relative") and sm.get("lines"):
            return f"{sm['filename_relative']}#{sm['lines'][0]}"
    return "?"


def load_triage(path):
    with open(path, encoding="utf8") as f:
        data = json.load(f)
    entries = data["entries"] if isinstance(data, dict) else data
    errors = []
    for i, e in enumerate(entries):
        for key in ("detector", "location", "reason"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                errors.append(f"{path}: entry {i} ({e.get('detector')} {e.get('location')}): "
                              f"missing or empty `{key}`")
    return entries, errors


def matches(entry, result):
    return (
        entry["detector"] == result["check"]
        and entry["location"] in {location(el) for el in result.get("elements", [])[:1]}
        and entry.get("contains", "") in result.get("description", "")
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triage", default="slither.triage.json")
    ap.add_argument("--json", default="cache/slither.json", help="full report (slither's format)")
    args = ap.parse_args()
    os.chdir(ROOT)

    entries, errors = load_triage(args.triage)
    files = sources()
    start = time.monotonic()
    logging.disable(logging.WARNING)  # crytic-compile and slither chatter; errors still raise
    try:
        results = run_slither(files)
    except Exception as e:  # a compile error, mostly: show it without a traceback
        print(f"slither: could not analyse {len(files)} files: {type(e).__name__}: {e}")
        return 2
    logging.disable(logging.NOTSET)
    elapsed = time.monotonic() - start

    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w", encoding="utf8") as f:
        json.dump(results, f, indent=1)

    used = [0] * len(entries)
    untriaged, counts = [], {}
    for r in results:
        counts[r["impact"]] = counts.get(r["impact"], 0) + 1
        if r["impact"] not in GATED:
            continue
        hits = [i for i, e in enumerate(entries) if matches(e, r)]
        for i in hits:
            used[i] += 1
        if not hits:
            untriaged.append(r)

    summary = ", ".join(f"{counts.get(k, 0)} {k.lower()}"
                        for k in ("High", "Medium", "Low", "Informational", "Optimization"))
    print(f"slither: {len(files)} files, {elapsed:.0f}s: {summary}; "
          f"{sum(1 for u in used if u)} triage entries used ({args.triage})")
    for r in untriaged:
        first = r["description"].strip().splitlines()[0]
        loc = location(r["elements"][0]) if r.get("elements") else "?"
        print(f"  UNTRIAGED {r['impact']} {r['check']} at {loc} ({where(r)}): {first}")
    for i, e in enumerate(entries):
        if not used[i]:
            errors.append(f"{args.triage}: stale entry {e.get('detector')} at "
                          f"{e.get('location')} matches no finding: remove it")
    for e in errors:
        print(f"  {e}")
    if untriaged:
        print(f"slither: {len(untriaged)} High/Medium finding(s) not triaged: fix them, or add an "
              f"entry with a reason to {args.triage} (full report: {args.json})")
    return 1 if untriaged or errors else 0


if __name__ == "__main__":
    sys.exit(main())
