"""leaseq benchmarks: peers and leaseq side by side, printed as tables of ratios."""
