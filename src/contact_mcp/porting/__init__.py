"""`contact-mcp export` and `contact-mcp import`: taking contacts out of the store and putting them in.

Export writes every contact whole (methods, identities, verification, ids and timestamps) as JSONL; importing that
file restores each contact as it was, on either backend. Import also reads new data — CSV with a header row of
contact fields, vCard 3/4 from address books — through the tools' normalisation and the store's upsert rules.
`readers` (and `vcard`) turn a file into typed rows, `rows` normalises a row or says why it is rejected, `run`
feeds rows to the store one transaction each, `report` draws progress and writes the summary and rejected rows,
`commands` is what the command line calls.
"""
