#!/usr/bin/env python3
"""Which rule IDs of a contract no test cites.

  python3 rule_coverage.py CONTRACT.md TEST_FILE...

A rule ID is a bold `**ID**` at the start of a rule, a table row `| ID |` (W1, TO3, ...) or a
bold client replay `**TC1: ...**`; open questions (Q1...) are not rules. A test cites an ID
when the ID appears as a word anywhere in a test file (a doc comment, a test name in lower
case with underscores, or an assertion message). Prints "ID: cited by N files" lines for the
uncited ones only, then "N of M cited", and exits 1 when any is uncited.
"""
import re
import sys


def rule_ids(text):
    ids = set(re.findall(r"\*\*([A-Z]{1,3}-?\d+[a-z]?)\*\*", text))
    ids |= set(re.findall(r"^\| *([A-Z]{1,3}\d+) *\|", text, re.M))
    ids |= set(re.findall(r"\*\*(TC\d):", text))
    return sorted(i for i in ids if not re.fullmatch(r"Q\d+", i))


def cited(rule, texts):
    # "W1" in prose, or "w1" as the last word of a snake_case test name (…_w1).
    pattern = re.compile(r"(?<![A-Za-z0-9-])" + re.escape(rule) + r"(?![A-Za-z0-9])")
    lower = re.compile(r"_" + re.escape(rule.lower().replace("-", "")) + r"(?![a-z0-9])")
    return [p for p, t in texts if pattern.search(t) or lower.search(t)]


def main(contract, files):
    texts = [(p, open(p, encoding="utf-8").read()) for p in files]
    ids = rule_ids(open(contract, encoding="utf-8").read())
    missing = [i for i in ids if not cited(i, texts)]
    for i in missing:
        print(f"{i}: cited by no test")
    print(f"{len(ids) - len(missing)} of {len(ids)} cited")
    return 1 if missing or not ids else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
