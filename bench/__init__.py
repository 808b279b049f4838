"""Benchmarks of contact-mcp's own cost, side by side with the bare MCP SDK: `python -m bench` writes RESULTS.md.

Each scenario module measures one thing (`overhead`: per-call cost of local and provider tools; `coldstart`;
`scale`: store latency by size; `memory`), `baseline_server` is the bare SDK floor they are compared with,
`procs` starts and finds the server processes, `stats` summarises samples and `report` writes the results.
"""
