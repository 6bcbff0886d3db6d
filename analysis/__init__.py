"""Figures, tables and statistics built only from the tidy result tables under results/."""
