"""The ledgers kept verifiable from outside the database: their key, their checkpoints in a
write-once store, and incremental verification of the audit trail and the consent ledger."""
