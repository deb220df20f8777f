"""The dashboard's pages, one script each, run by st.navigation in app.py.

A package only so that import-linter can check what they import.
"""
