"""Scrub throughput on one core: shadowtap's scrubber vs Presidio's AnalyzerEngine.

    python bench/scrub.py [--records 3000] [--presidio-records 200] [--rounds 3]
                          [--corpus-records 600] [--examples]

Two workloads of JSON bodies from tests/pii_corpus.py, every record distinct (the value
cache cannot help): ``typical`` (~1 KB order with an e-mail, a phone, a card and an IP) and
``dense`` (~1.3 KB with ~16 planted values: e-mails, phones, cards, IBANs, SSNs, IPs, JWTs,
API keys, passwords). shadowtap scrubs whole envelopes (JSON field by field, pseudonyms
included); the baseline only *analyzes* the body string with Presidio's default pattern
recognizers on a blank spaCy pipeline (no model), so it does less work than we do.

Recall: a planted value counts as found by shadowtap when it no longer appears in the output
(tests.pii_corpus.leaks), by Presidio when one of its results covers the value's span.
Prints one line per workload with both rates and the ratio. Rates are per CPU-second of this
process (``time.process_time``), the best of ``--rounds`` runs: on a shared machine wall
time measures the neighbours too.

Then the corpus figures (issue 9's bar), over ``--corpus-records`` whole requests of
tests/pii_corpus.py (JSON, form and text bodies, query strings, paths, headers; valid and
"almost valid" PII under phone names, neutral names, in free text and nested arrays):
planted values left in the output (goal 0) and ordinary values changed (goal <= 0.5 %;
4-part versions that are valid IPv4 literals are shown apart: no scrubber can tell them from
an address, and ours fails closed).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowtap.envelope import Envelope, encode
from shadowtap.scrub.recognizers import offline_tldextract
from shadowtap.scrub.scrubber import Scrubber
from tests.pii_corpus import (
    AMBIGUOUS,
    UNSEARCHABLE,
    dense_body,
    generate,
    leaks,
    ordinary_changes,
    typical_body,
)


def _typical(n: int, seed: int) -> list[tuple[bytes, list[tuple[str, str]]]]:
    return [typical_body(seed * 1_000_003 + i) for i in range(n)]


def _dense(n: int, seed: int) -> list[tuple[bytes, list[tuple[str, str]]]]:
    return [dense_body(seed * 1_000_003 + i) for i in range(n)]


def _envelope(body: bytes) -> Envelope:
    return Envelope(
        method="POST",
        path="/api/orders",
        headers=[("content-type", "application/json"), ("content-length", str(len(body)))],
        body=body,
    )


def _presidio() -> Any:
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    offline_tldextract()
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.nlp = {"en": spacy.blank("en")}  # no model download: tokenizer only
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def _ours(
    scrubber: Scrubber, data: list[tuple[bytes, list[tuple[str, str]]]]
) -> tuple[float, Counter[str], Counter[str]]:
    envs = [_envelope(body) for body, _ in data]
    start = time.process_time()
    for env in envs:
        scrubber.scrub(env)
    rate = len(envs) / (time.process_time() - start)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for env, (_, planted) in zip(envs, data, strict=True):
        missed = set(leaks(encode(env), planted))
        for item in planted:
            if item[0] in UNSEARCHABLE:
                continue
            total[item[0]] += 1
            found[item[0]] += item not in missed
    return rate, found, total


def _theirs(
    analyzer: Any, data: list[tuple[bytes, list[tuple[str, str]]]]
) -> tuple[float, Counter[str], Counter[str]]:
    texts = [body.decode() for body, _ in data]
    start = time.process_time()
    results = [analyzer.analyze(text=t, language="en") for t in texts]
    rate = len(texts) / (time.process_time() - start)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for text, res, (_, planted) in zip(texts, results, data, strict=True):
        for entity, value in planted:
            if entity in UNSEARCHABLE:
                continue
            total[entity] += 1
            at = text.find(value)
            found[entity] += at >= 0 and any(
                r.start <= at and r.end >= at + len(value) for r in res
            )
    return rate, found, total


def corpus_figures(scrubber: Scrubber, records: int, seed: int = 7) -> dict[str, Any]:
    """Planted values left and ordinary values changed over whole corpus requests."""
    samples = generate(records, seed=seed)
    befores = [copy.deepcopy(s.envelope) for s in samples]
    start = time.process_time()
    for sample in samples:
        scrubber.scrub(sample.envelope)
    rate = len(samples) / (time.process_time() - start)
    left: Counter[str] = Counter()
    planted: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    changed: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for before, sample in zip(befores, samples, strict=True):
        for entity, value in leaks(encode(sample.envelope), sample.planted):
            left[entity] += 1
            examples.setdefault(entity, []).append(value)
        planted.update(e for e, _ in sample.planted if e not in UNSEARCHABLE)
        counted, altered = ordinary_changes(before, sample.envelope, sample)
        seen.update(counted)
        for category, a, b in altered:
            changed[category] += 1
            examples.setdefault(category, []).append(f"{a!r} -> {b!r}")
    bar_seen = sum(n for c, n in seen.items() if c != AMBIGUOUS)
    bar_changed = sum(n for c, n in changed.items() if c != AMBIGUOUS)
    return {
        "rate": rate,
        "planted": sum(planted.values()),
        "left": left,
        "ordinary": bar_seen,
        "changed": bar_changed,
        "by_category": {c: (changed[c], seen[c]) for c in sorted(seen)},
        "examples": examples,
    }


def _print_corpus(fig: dict[str, Any], records: int, verbose: bool) -> None:
    left = sum(fig["left"].values())
    share = fig["changed"] / max(1, fig["ordinary"])
    amb_changed, amb_seen = fig["by_category"].get(AMBIGUOUS, (0, 0))
    print(
        f"corpus   {records} requests, {fig['rate']:.0f} requests/s   "
        f"planted left {left} of {fig['planted']}   "
        f"ordinary changed {fig['changed']} of {fig['ordinary']} ({share:.2%})   "
        f"[{AMBIGUOUS}: {amb_changed} of {amb_seen}]"
    )
    if left:
        print("         left: " + ", ".join(f"{e} {n}" for e, n in fig["left"].most_common()))
    worst = sorted(
        ((c, n, t) for c, (n, t) in fig["by_category"].items() if n and c != AMBIGUOUS),
        key=lambda x: -x[1],
    )
    if worst:
        print("         changed: " + ", ".join(f"{c} {n}/{t}" for c, n, t in worst))
    if verbose:
        for key, values in fig["examples"].items():
            print(f"         e.g. {key}: " + "; ".join(values[:5]))


def _recall(found: Counter[str], total: Counter[str]) -> str:
    overall = sum(found.values()) / max(1, sum(total.values()))
    per = ", ".join(f"{e} {found[e]}/{total[e]}" for e in sorted(total))
    return f"{overall:.1%} ({per})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--presidio-records", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--corpus-records", type=int, default=600)
    parser.add_argument("--examples", action="store_true", help="show what leaked or changed")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})  # one core
    scrubber = Scrubber(key="bench-key")
    analyzer = _presidio()
    for name, make in (("typical", _typical), ("dense", _dense)):
        warm = make(200, seed=99)
        _ours(scrubber, warm)
        _theirs(analyzer, warm[:20])
        mine, theirs_data = make(args.records, seed=1), make(args.presidio_records, seed=2)
        ours = theirs = 0.0
        for _ in range(args.rounds):
            # a fresh, warmed scrubber each round: no value cache carried over from the last
            fresh = Scrubber(key="bench-key")
            _ours(fresh, warm[:50])
            rate, o_found, o_total = _ours(fresh, mine)
            ours = max(ours, rate)
            rate, t_found, t_total = _theirs(analyzer, theirs_data)
            theirs = max(theirs, rate)
        print(
            f"{name:8} shadowtap {ours:8.0f} records/s   presidio {theirs:6.0f} bodies/s   "
            f"ratio {ours / theirs:5.1f}x"
        )
        print(f"         recall shadowtap {_recall(o_found, o_total)}")
        print(f"         recall presidio  {_recall(t_found, t_total)}")
    fig = corpus_figures(Scrubber(key="bench-key"), args.corpus_records)
    _print_corpus(fig, args.corpus_records, args.examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
