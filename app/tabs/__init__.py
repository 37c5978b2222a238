"""Launcher tabs, one module each: ``build_tab(ctx)`` builds the tab inside the current ``gr.Blocks``."""
