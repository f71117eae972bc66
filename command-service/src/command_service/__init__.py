"""Tandem service package."""
