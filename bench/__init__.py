"""`make bench`: cold import, memory and warm latency of the Lambda functions, against the targets.

A report, not a test: it prints a table and writes ``bench/results.json`` (git-ignored: it is a
measurement of one machine). See ``bench/README.md``.
"""
