"""Worked examples of code that lives outside siro_assets and consumes its tables."""
