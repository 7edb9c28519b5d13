"""The operator's cluster client: async, server-side apply with one field manager."""
