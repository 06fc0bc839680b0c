"""The directory store: journals, locking, leases by heartbeat files, format version."""
