"""Scrub throughput on one core: shadowtap's scrubber vs Presidio's AnalyzerEngine.

    python bench/scrub.py [--records 3000] [--presidio-records 200]

Two workloads of JSON bodies from tests/pii_corpus.py, every record distinct (the value
cache cannot help): ``typical`` (~1 KB order with an e-mail, a phone, a card and an IP) and
``dense`` (~1.3 KB with ~16 planted values: e-mails, phones, cards, IBANs, SSNs, IPs, JWTs,
API keys, passwords). shadowtap scrubs whole envelopes (JSON field by field, pseudonyms
included); the baseline only *analyzes* the body string with Presidio's default pattern
recognizers on a blank spaCy pipeline (no model), so it does less work than we do.

Recall: a planted value counts as found by shadowtap when it no longer appears in the output
(tests.pii_corpus.leaks), by Presidio when one of its results covers the value's span.
Prints one line per workload with both rates and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shadowtap.envelope import Envelope, encode
from shadowtap.processors.scrub import Scrubber, offline_tldextract
from tests.pii_corpus import UNSEARCHABLE, generate, leaks, typical_body


def _typical(n: int, seed: int) -> list[tuple[bytes, list[tuple[str, str]]]]:
    return [typical_body(seed * 1_000_003 + i) for i in range(n)]


def _dense(n: int, seed: int) -> list[tuple[bytes, list[tuple[str, str]]]]:
    out = []
    i = 0
    while len(out) < n:
        for s in generate(max(n, 50), seed=seed + i):
            if s.envelope.body[:1] == b"{" and len(out) < n:
                out.append((s.envelope.body, s.planted))
        i += 1
    return out


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
    start = time.perf_counter()
    for env in envs:
        scrubber.scrub(env)
    rate = len(envs) / (time.perf_counter() - start)
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
    start = time.perf_counter()
    results = [analyzer.analyze(text=t, language="en") for t in texts]
    rate = len(texts) / (time.perf_counter() - start)
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


def _recall(found: Counter[str], total: Counter[str]) -> str:
    overall = sum(found.values()) / max(1, sum(total.values()))
    per = ", ".join(f"{e} {found[e]}/{total[e]}" for e in sorted(total))
    return f"{overall:.1%} ({per})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--presidio-records", type=int, default=200)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})  # one core
    scrubber = Scrubber(key="bench-key")
    analyzer = _presidio()
    for name, make in (("typical", _typical), ("dense", _dense)):
        warm = make(200, seed=99)
        _ours(scrubber, warm)
        _theirs(analyzer, warm[:20])
        ours, o_found, o_total = _ours(scrubber, make(args.records, seed=1))
        theirs, t_found, t_total = _theirs(analyzer, make(args.presidio_records, seed=2))
        print(
            f"{name:8} shadowtap {ours:8.0f} records/s   presidio {theirs:6.0f} bodies/s   "
            f"ratio {ours / theirs:5.1f}x"
        )
        print(f"         recall shadowtap {_recall(o_found, o_total)}")
        print(f"         recall presidio  {_recall(t_found, t_total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
