"""The product catalog's published contract, shared by the three services."""
