"""Axolotl plugins used only by the test suite (loaded with ``plugins: [tests.plugins.<module>.<Class>]``)."""
