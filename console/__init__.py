"""On-call pages: the breaker board, service pages and their audited actions."""
