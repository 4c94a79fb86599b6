"""Dialect-neutral SQL: the tables the catalogue declares, statements, list pages, ``$filter``.

Nothing here runs a statement; :mod:`graphsec.storage.sqlite` and
:mod:`graphsec.storage.postgres` compile what this package builds for their dialect and run it.
"""
