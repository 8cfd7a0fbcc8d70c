"""The built-in admin web interface (spec/server-api.md §7): pages, login, admin API, live tail.

An I/O-edge package (design.md §2): it sits on transport/ and calls the same ApiDispatcher as
the HTTP server API, so the admin pages can do exactly what `POST /api` can.
"""
