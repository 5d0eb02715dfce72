"""ganzoo-extra: a hinge loss and a gradient penalty for ganzoo, one small module per plugin.

Nothing is imported here: ganzoo imports each plugin's module through its entry point.
"""
