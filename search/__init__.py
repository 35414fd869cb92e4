"""Search and discovery: full-text, fuzzy and filtered search over posts, users, hashtags and
locations, indexed from the marts (batch) and the event stream (`python -m search.indexer`).

Layers: `query` (user text -> words, safely), `documents` (what is indexed, keyed by entity),
`engine` (the interface) and `tantivy_engine` (the on-disk implementation), `ranking` (BM25 +
engagement + recency), `privacy` (the visibility rules on results), `service` (one request),
`autocomplete` (Redis sorted sets), `build` (from the marts) and `indexer` (from Kafka).
"""
