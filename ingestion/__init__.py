"""Events into ClickHouse raw tables, exactly once, from any source."""
