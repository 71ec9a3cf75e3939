"""Who may do what: the admin and viewer accounts, API tokens, sessions, login limits."""
