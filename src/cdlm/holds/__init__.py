"""Legal holds: data that must be kept whatever a request or a retention policy says. Read
by data subject requests, matching and the retention sweep; placed and released through
retention (whose categories a hold may name)."""
