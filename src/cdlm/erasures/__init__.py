"""The erasure register: every erasure recorded outside the database, so a restored backup
(which still holds the erased person's wrapped data key) can have it re-applied."""
