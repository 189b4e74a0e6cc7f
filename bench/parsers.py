"""Field accuracy of the provider parsers on held-out samples (sandbox/heldout.py).

    python bench/parsers.py [--seed N] [--per-template N] [--without sbi,axis] [--misses]

Prints, per provider: samples, field accuracy (kind + amount, currency, txn id,
payer name and phone where the text has them), not-income samples counted as
income (must be 0), and how readings were made (rule / generic / other kinds).
`--without` keeps those providers' senders but drops their rules, to show what the
fallback reader does for a trusted sender nobody wrote rules for.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.emails import load_providers, parse_messages  # noqa: E402
from sandbox.heldout import PROVIDERS, samples, score, trusted  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-template", type=int, default=20)
    parser.add_argument("--without", default="", help="providers whose rules are left out")
    parser.add_argument("--misses", action="store_true", help="print each wrong reading")
    args = parser.parse_args()
    left_out = {n.strip() for n in args.without.split(",") if n.strip()}
    providers = [replace(p, rules=()) if p.name in left_out else p for p in load_providers()]
    right, total, counted, n = Counter(), Counter(), Counter(), Counter()
    how: dict[str, Counter] = defaultdict(Counter)
    spent = 0.0
    for sample in samples(args.seed, args.per_template):
        started = time.perf_counter()
        parsed = parse_messages(sample.raw, providers=providers, trusted_forwarders=trusted())[0]
        spent += time.perf_counter() - started
        r, t, c = score(sample, parsed)
        key = sample.provider
        right[key] += r
        total[key] += t
        counted[key] += c
        n[key] += 1
        how[key][f"{parsed.kind}{'/generic' if parsed.generic else ''}"] += 1
        if args.misses and r < t:
            print(f"MISS {key}/{sample.template}: want {sample.kind} {sample.fields}\n"
                  f"     got {parsed.kind} amount={parsed.amount_minor} {parsed.currency} "
                  f"txn={parsed.transaction_id} name={parsed.sender_name!r} phone={parsed.sender_phone} "
                  f"rule={parsed.rule} | {parsed.reasons[-2:]}")
    print(f"{'provider':<11} {'samples':>7} {'accuracy':>9} {'non-income counted':>19}  readings")
    for key in PROVIDERS:
        print(f"{key + ('*' if key in left_out else ''):<11} {n[key]:>7} {100 * right[key] / total[key]:>8.1f}% "
              f"{counted[key]:>19}  {dict(sorted(how[key].items()))}")
    print(f"{'overall':<11} {sum(n.values()):>7} {100 * sum(right.values()) / sum(total.values()):>8.1f}% "
          f"{sum(counted.values()):>19}")
    print(f"parse time: {1000 * spent / sum(n.values()):.2f} ms per message (mean)")
    if left_out:
        print("* rules left out (senders kept): read by the fallback reader only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
