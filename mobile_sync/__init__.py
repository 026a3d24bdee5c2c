"""Offline sync: the protocol models (pure) and the reference field client.

See ../shared/SYNC.md; the protocol arrives with the offline-sync issue.
"""
