"""Textual screens.  They call workbench.core; core never imports them."""
