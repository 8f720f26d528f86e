"""Build stage: firmware sources + a platform -> an ELF and its build record."""
