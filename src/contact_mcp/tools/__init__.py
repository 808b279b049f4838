"""The tools: their table (`table`), their functions (`writes`, `reads`), the rules their arguments share
(`arguments`), how a result is rendered (`render`), and the plan deciding which provider serves which (`plan`)."""
