"""ganzoo's built-in plugins. Each registers through an entry point, exactly like a third party's."""
