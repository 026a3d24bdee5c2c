"""Vigil's pure alert logic: rules, routing by area of responsibility, grouping, escalation, CAP.

Filled by the alerts issue; the package exists now so the dependency contracts hold from day one.
"""
