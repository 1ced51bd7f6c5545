"""HTTP side of the console: `session` (login, logout, the access checks), `pages` (HTML pages
and their live fragments), `data` (the same views as typed JSON under /api/v1)."""
