"""The record-log engine: records, the state machine replaying them, and the store over any
log medium. No file or connection here: the medium is the log's."""
