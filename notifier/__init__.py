"""`kammthaar notify`: sends the alerts' notifications from the store's outbox (issue 13)."""
