"""Prefix search over usernames and hashtags: one sorted in-memory list, binary-searched.

Built once per snapshot; a lookup is two bisections and a scan of the matching range (capped),
so autocomplete never touches a database.
"""

from bisect import bisect_left
from dataclasses import dataclass

MAX_SCAN = 2_000  # matches examined per query before ranking by weight


@dataclass(frozen=True)
class Suggestion:
    kind: str  # "user" | "hashtag"
    text: str
    id: int | None
    weight: float  # followers of a user, posts of a hashtag


class AutocompleteIndex:
    def __init__(self, entries: list[tuple[str, Suggestion]]) -> None:
        entries.sort(key=lambda e: (e[0], e[1].kind, e[1].text))
        self.keys = [key for key, _ in entries]
        self.entries = [entry for _, entry in entries]

    @classmethod
    def build(
        cls,
        usernames: list[str],
        user_ids: list[int],
        hashtags: list[str],
        hashtag_posts: list[int],
        user_weights: list[float] | None = None,
    ) -> "AutocompleteIndex":
        weights = user_weights or [0.0] * len(usernames)
        entries = [
            (name.lower(), Suggestion("user", name, int(uid), float(w)))
            for name, uid, w in zip(usernames, user_ids, weights, strict=True)
        ]
        entries += [
            (tag.lower(), Suggestion("hashtag", f"#{tag}", None, float(n)))
            for tag, n in zip(hashtags, hashtag_posts, strict=True)
        ]
        return cls(entries)

    def search(
        self, prefix: str, limit: int, kinds: frozenset[str] | None = None
    ) -> list[Suggestion]:
        """Entries whose key starts with `prefix` (case-insensitive), heaviest first."""
        key = prefix.lower().lstrip("#@")
        if not key:
            return []
        start = bisect_left(self.keys, key)
        matches: list[Suggestion] = []
        for i in range(start, min(len(self.keys), start + MAX_SCAN)):
            if not self.keys[i].startswith(key):
                break
            entry = self.entries[i]
            if kinds is None or entry.kind in kinds:
                matches.append(entry)
        matches.sort(key=lambda s: (-s.weight, len(s.text), s.text))
        return matches[:limit]

    def __len__(self) -> int:
        return len(self.keys)
