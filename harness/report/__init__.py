"""Run reports: summary.json, journal.jsonl, junit.xml, summary.md."""
