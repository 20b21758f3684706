"""Margin trading: the margin desk (books, valuation), rules, lending pools, liquidation."""
