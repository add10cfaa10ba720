"""adrstack contracts: the one definition of subjects, messages, settings and tables."""
