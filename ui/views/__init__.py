"""The app's pages, one module each (ui/app.py picks one)."""
