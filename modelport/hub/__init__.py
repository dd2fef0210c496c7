"""`modelport serve --hub`: agents on other machines become upstreams of the router.

See docs/hub.md.
"""
