"""Development and test infrastructure: embedded PostgreSQL, the Tansu broker and the process launcher.

Used by `make run`, the test suite and benchmarks; production uses real servers instead.
"""
