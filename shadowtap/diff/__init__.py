"""Diff: tell a regression from noise, per endpoint, before a cutover.

Pure stages over records (no Kafka here; the ``shadowtap diff`` agent is a thin shell):

- ``model``: the input (a Request, each side's Side, a Record) and a Difference;
- ``compare``: two sides compared (status, headers, body) under the rules; ``structural``
  walks JSON, ``text`` compares text and bytes; ``classes`` recognises noise-class values;
- ``rules``, ``jsonpath``, ``noise``: the versioned rules file, JSONPath rules and comparators;
  ``triage`` edits the file;
- ``endpoints``: route templates; ``pairing``: results paired by record id;
- ``run``: a run (views, learned noise in ``learned``, bounded counters in ``tally``,
  latency sketches in ``latency``) producing a ``summary``;
- ``goals``, ``html``, ``junit``: gates and reports.
"""
