"""Data subject requests (GDPR Art. 15-21, CCPA/CPRA, LGPD): workflow states and legal clocks."""
