"""The PostgreSQL store: one row per combination, leases as rows, URLs, connection, schema."""
