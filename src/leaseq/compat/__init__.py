"""Drop-in adapters for the libraries leaseq replaces (DESIGN §9)."""
