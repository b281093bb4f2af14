"""``shadowtap drill``: replay a window of retained traffic against a DR site, with a report.

window (which records) → plan (found, counted, described; retention checked) → run (the
replayer's engine in the drill's own group, checkpointed) → report (figures, goals, JSON,
JUnit, HTML) → history (``shadowtap.drills``, one summary per run).
"""
